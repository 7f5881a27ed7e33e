"""Bad input gets a clear error that names the problem and the way out."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import padded_batch

import modernbert.model as M


@pytest.fixture(scope="module")
def mlm(tiny_checkpoint):
    return M.ModernBertForMaskedLM.from_pretrained(tiny_checkpoint("ModernBertForMaskedLM"))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: dict(input_ids=torch.rand(2, 5)), "input_ids must be an integer tensor"),
        (lambda: dict(input_ids=torch.tensor([[5, 600]])), "input_ids holds id 600, outside the vocabulary"),
        (lambda: dict(input_ids=torch.tensor([[5, -1]])), "input_ids holds id -1"),
        (lambda: dict(input_ids=torch.ones(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 4)),
         r"attention_mask has shape \(2, 4\) but the input has shape \(2, 5\)"),
        (lambda: dict(input_ids=torch.ones(0, 5, dtype=torch.long)), "empty batch"),
        (lambda: dict(input_ids=torch.ones(2, 0, dtype=torch.long)), "empty batch"),
        (lambda: dict(input_ids=torch.ones(5, dtype=torch.long)), "pass a batch"),
        (lambda: dict(), "exactly one of input_ids or inputs_embeds"),
        (lambda: dict(input_ids=torch.ones(1, 5000, dtype=torch.long)), "more than max_position_embeddings=4096"),
        (lambda: dict(input_ids=torch.ones(2, 3, dtype=torch.long),
                      attention_mask=torch.tensor([[1, 1, 1], [0, 0, 0]])), None),  # an empty row: MLM still runs
        (lambda: dict(input_ids=torch.ones(2, 3, dtype=torch.long), labels=torch.ones(2, 4, dtype=torch.long)),
         r"labels has shape \(2, 4\)"),
        (lambda: dict(input_ids=torch.ones(6, dtype=torch.long), cu_seqlens=torch.tensor([0, 2, 5])),
         "cu_seqlens ends at 5 but there are 6 packed tokens"),
    ],
)
def test_model_input_errors(mlm, make, message):
    if message is None:
        mlm(**make())
        return
    with pytest.raises(ValueError, match=message):
        mlm(**make())


def test_pooling_an_empty_row(tiny_checkpoint):
    model = M.ModernBertForSequenceClassification.from_pretrained(
        tiny_checkpoint("ModernBertForSequenceClassification"))
    with pytest.raises(ValueError, match="attention_mask has a row with no tokens"):
        model(torch.ones(2, 3, dtype=torch.long), torch.tensor([[1, 1, 1], [0, 0, 0]]))


def test_backends(tiny_checkpoint):
    folder = tiny_checkpoint("ModernBertModel")
    with pytest.raises(ValueError, match="attn_implementation='flex' is unknown; choose one of"):
        M.ModernBertModel.from_pretrained(folder, attn_implementation="flex")
    # No silent fallback: flash-attn that cannot run here is an error naming the fix.
    with pytest.raises(ValueError, match="flash_attention_2"):
        M.ModernBertModel.from_pretrained(folder, attn_implementation="flash_attention_2")


def copy_checkpoint(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_missing_files(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint("ModernBertModel"), tmp_path / "ckpt")
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="holds no weights: expected model.safetensors"):
        M.ModernBertModel.from_pretrained(folder)
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        M.ModernBertModel.from_pretrained(folder)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        M.ModernBertModel.from_pretrained(str(tmp_path / "nowhere"))


def test_offline_hub_id_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="cannot load 'someone/not-cached'.*bundled model"):
        M.ModernBertModel.from_pretrained("someone/not-cached", cache_dir=tmp_path)


def test_other_model_type(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint("ModernBertModel"), tmp_path / "ckpt")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = "bert"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"config.json: config has model_type='bert'"):
        M.ModernBertModel.from_pretrained(folder)


def test_truncated_safetensors(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint("ModernBertModel"), tmp_path / "ckpt")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(ValueError, match=r"model.safetensors is not a readable safetensors file \(truncated"):
        M.ModernBertModel.from_pretrained(folder)


def test_missing_and_mismatched_keys(tiny_checkpoint, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = copy_checkpoint(tiny_checkpoint("ModernBertForMaskedLM"), tmp_path / "ckpt")
    state = load_file(folder / "model.safetensors")
    del state["model.layers.2.mlp.Wo.weight"]
    state["model.layers.9.attn.Wqkv.weight"] = torch.zeros(3)
    save_file(state, folder / "model.safetensors")
    with pytest.raises(ValueError, match=r"missing keys: \['model.layers.2.mlp.Wo.weight'\]; unexpected keys: "
                                         r"\['model.layers.9.attn.Wqkv.weight'\]"):
        M.ModernBertForMaskedLM.from_pretrained(folder)
    cls_folder = tiny_checkpoint("ModernBertForSequenceClassification")
    with pytest.raises(ValueError, match=r"classifier.(weight|bias) has shape \(2(, 32)?,?\).*num_labels"):
        M.ModernBertForSequenceClassification.from_pretrained(cls_folder, num_labels=5)


def test_bad_dtype(tiny_checkpoint):
    with pytest.raises(ValueError, match="dtype='int8' is not supported"):
        M.ModernBertModel.from_pretrained(tiny_checkpoint("ModernBertModel"), dtype="int8")


def test_multiple_choice_shape(tiny_checkpoint):
    model = M.ModernBertForMultipleChoice.from_pretrained(tiny_checkpoint("ModernBertForMultipleChoice"))
    ids, mask = padded_batch([5, 5])
    with pytest.raises(ValueError, match=r"multiple choice needs input_ids with 3 dimensions"):
        model(ids, mask)


class _Custom:
    pass


def test_pickled_code_in_bin_is_refused_clearly(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint("ModernBertModel"), tmp_path / "ckpt")
    (folder / "model.safetensors").unlink()
    torch.save({"weights": _Custom()}, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="refuses to run code") as info:
        M.ModernBertModel.from_pretrained(folder)
    assert "weights_only" not in str(info.value) and "corrupt" not in str(info.value)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04 not a checkpoint")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        M.ModernBertModel.from_pretrained(folder)
