"""The transformers model API beyond inference: init of missing heads, masks with holes, the pad row's
gradient, finite losses, output flags and tuples, loader and config arguments, embeddings, checkpointing."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import transformers
from conftest import padded_batch
from test_model import TOL, load_pair, max_diff_real

import modernbert.model as M
from modernbert import AutoModelForSequenceClassification, ModernBertConfig
from modernbert.errors import LoadWarning


def quiet_load(cls, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls.from_pretrained(*args, **kwargs)


# ----- initialisation of heads a checkpoint lacks -----


def _head_stats(models) -> dict[str, float]:
    cls_w = torch.cat([m.classifier.weight.detach().flatten() for m in models])
    dense = torch.cat([m.head.dense.weight.detach().flatten() for m in models])
    return {"classifier": cls_w.std().item(), "dense": dense.std().item(), "classifier_max": cls_w.abs().max().item()}


def test_missing_heads_initialised_as_the_reference(tiny_checkpoint):
    """A classification head on a base checkpoint: no NaN, no garbage, and the reference's init statistics
    (std within 10% of what transformers' from_pretrained gives on the same checkpoint), over many loads."""
    folder = tiny_checkpoint("ModernBertModel")
    ours, ref = [], []
    for seed in range(24):
        torch.manual_seed(seed)
        ours.append(quiet_load(M.ModernBertForSequenceClassification, folder, num_labels=8))
        torch.manual_seed(seed)
        ref.append(quiet_load(transformers.ModernBertForSequenceClassification, folder, num_labels=8))
    for m in ours:
        assert all(torch.isfinite(p).all() for p in m.parameters())
    o, r = _head_stats(ours), _head_stats(ref)
    assert r["classifier"] > 0 and r["dense"] > 0
    assert abs(o["classifier"] / r["classifier"] - 1) < 0.10, (o, r)
    assert abs(o["dense"] / r["dense"] - 1) < 0.10, (o, r)
    assert o["classifier_max"] <= 2 * 32**-0.5 + 1e-6  # truncated at 2 std (initializer_cutoff_factor)
    assert torch.equal(ours[0].head.norm.weight, torch.ones_like(ours[0].head.norm.weight))
    base = M.ModernBertModel.from_pretrained(folder)
    assert torch.equal(ours[0].model.layers[1].attn.Wqkv.weight, base.layers[1].attn.Wqkv.weight)


def test_classifier_on_mlm_checkpoint_keeps_its_head(tiny_checkpoint):
    """On an MLM checkpoint the prediction head loads (same names), only the classifier is new, as in the
    reference; many loads never give NaN or huge values (they did when the classifier missed init)."""
    folder = tiny_checkpoint("ModernBertForMaskedLM")
    ref = quiet_load(transformers.ModernBertForSequenceClassification, folder)
    for seed in range(30):
        torch.manual_seed(seed)
        ours = quiet_load(M.ModernBertForSequenceClassification, folder)
        assert torch.equal(ours.head.dense.weight, ref.head.dense.weight)
        assert ours.classifier.weight.abs().max() <= 2 * 32**-0.5 + 1e-6
        assert torch.equal(ours.classifier.bias, torch.zeros(2))


def test_base_checkpoint_into_mlm_warns_once(tiny_checkpoint):
    folder = tiny_checkpoint("ModernBertModel")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = M.ModernBertForMaskedLM.from_pretrained(folder)
    ours = [w for w in record if issubclass(w.category, LoadWarning)]
    assert len(ours) == 1 and "head.dense.weight" in str(ours[0].message)
    ids, mask = padded_batch([9, 4])
    logits = model(ids, mask).logits
    assert logits.shape == (2, 9, 512) and torch.isfinite(logits).all()
    assert model.decoder.weight is model.model.embeddings.tok_embeddings.weight


def test_num_labels_rederives_labels(tiny_checkpoint):
    model = quiet_load(AutoModelForSequenceClassification, "modernbert-tiny", num_labels=3)
    assert model.config.num_labels == 3 and model.config.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    ids, mask = padded_batch([6, 3])
    assert model(ids, mask).logits.shape == (2, 3)
    # A 2-label classifier checkpoint loaded with 3 labels: shape mismatch, unless told to re-initialise.
    folder = tiny_checkpoint("ModernBertForSequenceClassification")
    with pytest.raises(ValueError, match="ignore_mismatched_sizes"):
        M.ModernBertForSequenceClassification.from_pretrained(folder, num_labels=3)
    model, info = quiet_load(
        M.ModernBertForSequenceClassification, folder, num_labels=3, ignore_mismatched_sizes=True,
        output_loading_info=True,
    )
    assert {k for k, _, _ in info["mismatched_keys"]} == {"classifier.weight", "classifier.bias"}
    assert model.classifier.weight.shape == (3, 32)


# ----- numbers -----


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@pytest.mark.parametrize("arch", ["ModernBertModel", "ModernBertForMaskedLM", "ModernBertForTokenClassification"])
def test_masks_with_holes_and_left_padding_match_reference(tiny_checkpoint, arch, impl):
    """Rotary positions are column indices and the window measures columns, as in the reference."""
    ref, ours = load_pair(tiny_checkpoint, arch, impl=impl)
    ids, mask = padded_batch([40, 40, 33, 12], seed=7)
    mask[0, 5:9] = 0  # a hole inside the window
    mask[0, 20] = 0
    mask[1, :13] = 0  # left padding
    mask[2, 3:30] = 0  # a hole wider than the window: tokens 2 and 30 are not within reach of each other
    with torch.no_grad():
        r = ref(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        o = ours(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    key = "last_hidden_state" if arch == "ModernBertModel" else "logits"
    assert max_diff_real(r[key], o[key], mask) < TOL
    assert max(max_diff_real(a, b, mask) for a, b in zip(r.hidden_states, o.hidden_states)) < TOL


def test_pad_row_gets_no_gradient_as_in_reference(tiny_checkpoint):
    """[PAD] ids attended to: the row is used but not trained (the reference's padding_idx). A classifier, since
    an MLM's tied decoder trains every row."""
    ref, ours = load_pair(tiny_checkpoint, "ModernBertForSequenceClassification")
    pad = ours.config.pad_token_id
    ids, mask = padded_batch([12, 5])
    mask = torch.ones_like(mask)
    for model in (ref, ours):
        model.train()
        model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1])).loss.backward()
    ours_grad = ours.model.embeddings.tok_embeddings.weight.grad
    ref_grad = ref.model.embeddings.tok_embeddings.weight.grad
    assert ours.model.embeddings.tok_embeddings.padding_idx == pad
    assert torch.count_nonzero(ref_grad[pad]) == 0 and torch.count_nonzero(ours_grad[pad]) == 0
    assert torch.count_nonzero(ours_grad[ids[0, 0]]) > 0
    assert (ours_grad - ref_grad).abs().max() < TOL


def test_qa_loss_finite_when_positions_point_at_padding(tiny_checkpoint):
    ours = M.ModernBertForQuestionAnswering.from_pretrained(tiny_checkpoint("ModernBertForQuestionAnswering"))
    ids, mask = padded_batch([20, 6])
    out = ours(ids, mask, start_positions=torch.tensor([3, 10]), end_positions=torch.tensor([5, 15]))
    assert torch.isfinite(out.loss)
    # Row 1 points at padding: ignored, so the loss is row 0's alone.
    only = ours(ids[:1, :20], mask[:1], start_positions=torch.tensor([3]), end_positions=torch.tensor([5]))
    assert out.loss.item() == pytest.approx(only.loss.item(), abs=1e-5)


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_all_zero_mask_row(tiny_checkpoint, impl):
    """A row with no tokens gives zeros where the encoder outputs per token, a clear error where it pools."""
    ids, mask = padded_batch([9, 4, 7])
    mask[1] = 0
    base = M.ModernBertModel.from_pretrained(tiny_checkpoint("ModernBertModel"), attn_implementation=impl)
    out = base(ids, mask).last_hidden_state
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    alone = base(ids[[0, 2]], mask[[0, 2]]).last_hidden_state
    assert (out[[0, 2]] - alone).abs().max() < 1e-5
    for arch in ("ModernBertForMaskedLM", "ModernBertForTokenClassification", "ModernBertForQuestionAnswering"):
        model = getattr(M, arch).from_pretrained(tiny_checkpoint(arch), attn_implementation=impl)
        assert all(torch.isfinite(t).all() for t in model(ids, mask).to_tuple())
    seq = M.ModernBertForSequenceClassification.from_pretrained(
        tiny_checkpoint("ModernBertForSequenceClassification"), attn_implementation=impl
    )
    with pytest.raises(ValueError, match="row with no tokens"):
        seq(ids, mask)


# ----- output flags and tuples -----


@pytest.mark.parametrize("arch", ["ModernBertModel", "ModernBertForMaskedLM", "ModernBertForQuestionAnswering"])
def test_return_dict_false_unpacks_as_reference(tiny_checkpoint, arch):
    ref, ours = load_pair(tiny_checkpoint, arch)
    ids, mask = padded_batch([10, 10])
    kwargs = {"start_positions": torch.tensor([1, 2]), "end_positions": torch.tensor([3, 4])} \
        if arch == "ModernBertForQuestionAnswering" else {}
    with torch.no_grad():
        r = ref(input_ids=ids, attention_mask=mask, return_dict=False, output_hidden_states=True, **kwargs)
        o = ours(input_ids=ids, attention_mask=mask, return_dict=False, output_hidden_states=True, **kwargs)
    assert isinstance(o, tuple) and len(o) == len(r)
    for a, b in zip(r, o):
        if isinstance(a, tuple):
            assert len(a) == len(b) and max((x - y).abs().max().item() for x, y in zip(a, b)) < TOL
        else:
            assert a.shape == b.shape and (a - b).abs().max() < TOL


def test_config_output_flags(tiny_checkpoint):
    folder = tiny_checkpoint("ModernBertModel")
    model = M.ModernBertModel.from_pretrained(folder, output_hidden_states=True, return_dict=False)
    out = model(*padded_batch([5]))
    assert isinstance(out, tuple) and len(out[1]) == model.config.num_hidden_layers + 1


def test_output_attentions_eager_matches_reference_and_sdpa_says_how(tiny_checkpoint):
    ref, ours = load_pair(tiny_checkpoint, "ModernBertModel", impl="eager")
    ref.config._attn_implementation = "eager"
    ids, mask = padded_batch([12, 7])
    with torch.no_grad():
        r = transformers.ModernBertModel.from_pretrained(
            tiny_checkpoint("ModernBertModel"), attn_implementation="eager"
        )(input_ids=ids, attention_mask=mask, output_attentions=True)
        o = ours(ids, mask, output_attentions=True)
    assert len(o.attentions) == len(r.attentions)
    real = mask.bool()
    for a, b in zip(r.attentions, o.attentions):
        assert a.shape == b.shape
        both = real[:, None, :, None] & real[:, None, None, :]
        assert (a - b).abs()[both.expand_as(a)].max() < TOL
    sdpa = M.ModernBertModel.from_pretrained(tiny_checkpoint("ModernBertModel"))
    with pytest.raises(ValueError, match="attn_implementation='eager'"):
        sdpa(ids, mask, output_attentions=True)
    assert sdpa(ids, mask, output_attentions=False).attentions is None


# ----- loading and config arguments -----


def test_loader_kwargs_consumed_and_typos_refused(tiny_checkpoint, tmp_path):
    folder = tiny_checkpoint("ModernBertForSequenceClassification")
    model = M.ModernBertForSequenceClassification.from_pretrained(
        folder, device_map="cpu", low_cpu_mem_usage=True, trust_remote_code=False, use_safetensors=True,
    )
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    for key in ("device_map", "low_cpu_mem_usage", "trust_remote_code", "use_safetensors"):
        assert key not in saved
    with pytest.raises(TypeError, match="num_label"):
        M.ModernBertForSequenceClassification.from_pretrained(folder, num_label=3)
    with pytest.raises(ValueError, match="split the model"):
        M.ModernBertModel.from_pretrained(folder, device_map={"embeddings": 0, "layers": 1})


def test_config_keeps_unknown_keys(tmp_path):
    config = ModernBertConfig(reference_compile=True, finetuning_task="sst2", hidden_size=64,
                              num_attention_heads=4)
    assert config.reference_compile is True and config.finetuning_task == "sst2" and config.model_type == "modernbert"
    config.to_json_file(tmp_path / "c.json")
    back = ModernBertConfig.from_json_file(tmp_path / "c.json")
    assert back.extra == {"reference_compile": True, "finetuning_task": "sst2"} and back.hidden_size == 64
    ref = transformers.ModernBertConfig.from_json_file(str(tmp_path / "c.json"))
    assert ref.finetuning_task == "sst2" and ref.hidden_size == 64


def test_config_and_state_dict_and_subfolder(tiny_checkpoint, tmp_path):
    folder = tiny_checkpoint("ModernBertForTokenClassification")
    base = M.ModernBertForTokenClassification.from_pretrained(folder)
    ids, mask = padded_batch([8, 3])
    expected = base(ids, mask).logits
    from_sd = M.ModernBertForTokenClassification.from_pretrained(None, config=base.config, state_dict=base.state_dict())
    assert torch.equal(from_sd(ids, mask).logits, expected)
    base.save_pretrained(tmp_path / "repo" / "sub")
    sub = M.ModernBertForTokenClassification.from_pretrained(tmp_path / "repo", subfolder="sub")
    assert torch.equal(sub(ids, mask).logits, expected)
    assert sub.name_or_path == str(tmp_path / "repo") and sub.main_input_name == "input_ids"
    assert sub.base_model is sub.model


# ----- the training surface -----


def test_gradient_checkpointing_same_gradients(tiny_checkpoint):
    folder = tiny_checkpoint("ModernBertForSequenceClassification")
    ids, mask = padded_batch([20, 9])
    labels = torch.tensor([0, 1])
    grads = []
    for enable in (False, True):
        model = M.ModernBertForSequenceClassification.from_pretrained(folder).train()
        if enable:
            model.gradient_checkpointing_enable()
            assert model.is_gradient_checkpointing
        model(ids, mask, labels=labels).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name in grads[0]:
        assert (grads[0][name] - grads[1][name]).abs().max() < 1e-6, name


def test_embedding_accessors_and_resize(tiny_checkpoint):
    mlm = M.ModernBertForMaskedLM.from_pretrained(tiny_checkpoint("ModernBertForMaskedLM"))
    old = mlm.get_input_embeddings().weight.detach().clone()
    assert mlm.get_output_embeddings() is mlm.decoder
    emb = mlm.resize_token_embeddings(520)
    assert emb.num_embeddings == 520 and mlm.config.vocab_size == 520
    assert torch.equal(emb.weight[:512], old) and torch.allclose(emb.weight[515], old.mean(0))
    assert mlm.decoder.weight is emb.weight and mlm.decoder.bias.shape == (520,)
    ids, mask = padded_batch([6])
    ids[0, 2] = 517
    assert mlm(ids, mask).logits.shape == (1, 6, 520)
    assert mlm.resize_token_embeddings(600, pad_to_multiple_of=64).num_embeddings == 640
    seq = M.ModernBertForSequenceClassification.from_pretrained(tiny_checkpoint("ModernBertForSequenceClassification"))
    assert seq.get_output_embeddings() is None
    new = torch.nn.Embedding(512, 32)
    seq.set_input_embeddings(new)
    assert seq.get_input_embeddings() is new and seq.model.embeddings.tok_embeddings is new
    n_all = seq.num_parameters()
    assert seq.num_parameters(exclude_embeddings=True) == n_all - 512 * 32
    seq.classifier.requires_grad_(False)
    assert seq.num_parameters(only_trainable=True) == n_all - seq.classifier.weight.numel() - 2


def test_config_label_and_layout_arguments_as_transformers(tmp_path):
    """id2label alone sets the count; num_labels set later re-derives names; the 5.x / 4.x spellings set
    their fields in the constructor; loader-only flags never reach config.json; config= may be a path."""
    kwargs = dict(rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 5000.0},
                                   "sliding_attention": {"rope_type": "default", "rope_theta": 300.0}},
                  torch_dtype="bfloat16")
    ours, ref = ModernBertConfig(**kwargs), transformers.ModernBertConfig(**kwargs)
    assert (ours.global_rope_theta, ours.local_rope_theta) == (5000.0, 300.0) and ours.dtype == "bfloat16"
    assert ref.rope_parameters["sliding_attention"]["rope_theta"] == 300.0
    for config in (ours, ref):
        config.num_labels = 4
    assert ours.id2label == {i: f"LABEL_{i}" for i in range(4)} == ref.id2label
    model = quiet_load(AutoModelForSequenceClassification, "modernbert-tiny", id2label={0: "a", 1: "b", 2: "c"})
    assert model.config.num_labels == 3 and model.config.label2id == {"a": 0, "b": 1, "c": 2}
    config = ModernBertConfig.from_pretrained("modernbert-tiny", trust_remote_code=True, force_download=False)
    config.save_pretrained(tmp_path)
    assert "trust_remote_code" not in json.loads((tmp_path / "config.json").read_text())
    by_path = quiet_load(AutoModelForSequenceClassification, "modernbert-tiny", config=str(tmp_path))
    assert by_path.config.hidden_size == config.hidden_size
