"""SentenceEncoder on sentence-transformers folder layouts: same vectors as sentence-transformers' pooling formula.

sentence-transformers is not installed; its Transformer → Pooling → Normalize chain is computed by hand from
transformers' AutoModel hidden states (`reference_embeddings`), on folders laid out as it saves them.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers

from modernbert import SentenceEncoder, cos_sim, pipeline
from modernbert.pipelines import MissingTokenizerError

TOL = 1e-4
TEXTS = [
    "The capital of France is Paris.",
    "  Leading and trailing spaces are stripped.  ",
    "Hi",
    "Machine learning models need data, compute, and patience; tokenizers need text, and a lot of it.",
    "Tokyo is the capital of Japan (日本).",
]
PROMPTS = {"query": "search_query: ", "document": "search_document: "}
CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                    "special_tokens_map.json")


def write_st_folder(
    checkpoint: Path,
    folder: Path,
    *,
    pooling: str = "mean",
    normalize: bool = True,
    subfolder: str = "",
    max_seq_length: int | None = 16,
    prompts: dict[str, str] | None = None,
    default_prompt_name: str | None = None,
    include_prompt: bool = True,
    extra_modules: list[dict] | None = None,
) -> Path:
    """A folder laid out as sentence-transformers saves one (modules.json, 1_Pooling/, 2_Normalize/, ...)."""
    transformer = folder / subfolder
    transformer.mkdir(parents=True, exist_ok=True)
    for name in CHECKPOINT_FILES:
        shutil.copy(checkpoint / name, transformer / name)
    modules = [{"idx": 0, "name": "0", "path": subfolder, "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
        (folder / "2_Normalize").mkdir(exist_ok=True)
    modules += extra_modules or []
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    pooling_config = {
        "word_embedding_dimension": 32,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": include_prompt,
    }
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config, indent=2))
    if max_seq_length is not None:
        (transformer / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))
    if prompts is not None:
        (folder / "config_sentence_transformers.json").write_text(json.dumps(
            {"__version__": {"sentence_transformers": "3.3.1"}, "prompts": prompts,
             "default_prompt_name": default_prompt_name, "similarity_fn_name": "cosine"}))
    return folder


def reference_embeddings(transformer_dir: Path, texts: list[str], *, pooling: str, normalize: bool,
                         max_seq_length: int, prompt: str = "", include_prompt: bool = True) -> np.ndarray:
    """sentence-transformers' encode: strip, prefix, tokenize (pad, truncate), pool, normalise — by hand."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.AutoModel.from_pretrained(transformer_dir).eval()
    tok = transformers.AutoTokenizer.from_pretrained(transformer_dir)
    batch = tok([prompt + t.strip() for t in texts], padding=True, truncation="longest_first",
                max_length=max_seq_length, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].clone()
    if prompt and not include_prompt:
        mask[:, : len(tok([prompt])["input_ids"][0]) - 1] = 0
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        m = mask.unsqueeze(-1).expand(hidden.size()).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)
    if normalize:
        pooled = F.normalize(pooled, p=2, dim=1)
    return pooled.numpy()


@pytest.fixture(scope="module")
def nomic_like(base_folder, tmp_path_factory):
    """Mean pooling, Normalize, query/document prompts: like nomic-ai/modernbert-embed-base."""
    return write_st_folder(base_folder, tmp_path_factory.mktemp("nomic"), pooling="mean", normalize=True,
                           prompts=PROMPTS)


@pytest.fixture(scope="module")
def gte_like(base_folder, tmp_path_factory):
    """CLS pooling, weights in 0_Transformer/, no Normalize: like older sentence-transformers exports."""
    return write_st_folder(base_folder, tmp_path_factory.mktemp("gte"), pooling="cls", normalize=False,
                           subfolder="0_Transformer", max_seq_length=24)


def test_mean_pooling_normalize_matches_reference(nomic_like):
    encoder = SentenceEncoder.from_pretrained(nomic_like)
    assert (encoder.pooling, encoder.normalize, encoder.max_seq_length) == ("mean", True, 16)
    ours = encoder.encode(TEXTS)
    assert isinstance(ours, np.ndarray) and ours.shape == (len(TEXTS), 32) and ours.dtype == np.float32
    ref = reference_embeddings(nomic_like, TEXTS, pooling="mean", normalize=True, max_seq_length=16)
    np.testing.assert_allclose(ours, ref, atol=TOL)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_cls_pooling_subfolder_matches_reference(gte_like):
    encoder = SentenceEncoder.from_pretrained(gte_like)
    assert (encoder.pooling, encoder.normalize, encoder.max_seq_length) == ("cls", False, 24)
    ref = reference_embeddings(gte_like / "0_Transformer", TEXTS, pooling="cls", normalize=False, max_seq_length=24)
    np.testing.assert_allclose(encoder.encode(TEXTS), ref, atol=TOL)
    ref_normalized = F.normalize(torch.tensor(ref), dim=1).numpy()
    np.testing.assert_allclose(encoder.encode(TEXTS, normalize_embeddings=True), ref_normalized, atol=TOL)


@pytest.mark.parametrize("prompt_name", ["query", "document"])
def test_prompts_from_config(nomic_like, prompt_name):
    encoder = SentenceEncoder.from_pretrained(nomic_like)
    ref = reference_embeddings(nomic_like, TEXTS, pooling="mean", normalize=True, max_seq_length=16,
                               prompt=PROMPTS[prompt_name])
    np.testing.assert_allclose(encoder.encode(TEXTS, prompt_name=prompt_name), ref, atol=TOL)
    method = encoder.encode_query if prompt_name == "query" else encoder.encode_document
    np.testing.assert_allclose(method(TEXTS), ref, atol=TOL)
    np.testing.assert_allclose(encoder.encode(TEXTS, prompt=PROMPTS[prompt_name]), ref, atol=TOL)


def test_default_prompt_and_include_prompt(base_folder, tmp_path):
    folder = write_st_folder(base_folder, tmp_path / "instr", pooling="mean", normalize=False, prompts=PROMPTS,
                             default_prompt_name="query", include_prompt=False, max_seq_length=64)
    encoder = SentenceEncoder.from_pretrained(folder)
    ref = reference_embeddings(folder, TEXTS, pooling="mean", normalize=False, max_seq_length=64,
                               prompt=PROMPTS["query"], include_prompt=False)
    np.testing.assert_allclose(encoder.encode(TEXTS), ref, atol=TOL)


def test_plain_checkpoint_folder_is_mean_pooled(base_folder):
    encoder = SentenceEncoder.from_pretrained(base_folder)
    assert (encoder.pooling, encoder.normalize) == ("mean", False)
    assert encoder.max_seq_length == 4096  # min(max_position_embeddings, tokenizer.model_max_length)
    ref = reference_embeddings(base_folder, TEXTS, pooling="mean", normalize=False, max_seq_length=4096)
    np.testing.assert_allclose(encoder.encode(TEXTS), ref, atol=TOL)


def test_output_forms_and_batching(nomic_like):
    encoder = SentenceEncoder.from_pretrained(nomic_like)
    matrix = encoder.encode(TEXTS, batch_size=2)
    np.testing.assert_allclose(matrix, encoder.encode(TEXTS, batch_size=1), atol=1e-6)
    vector = encoder.encode(TEXTS[0])
    assert vector.shape == (32,)
    np.testing.assert_allclose(vector, matrix[0], atol=1e-6)
    tensor = encoder.encode(TEXTS, convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (len(TEXTS), 32)
    assert encoder.dim == encoder.get_sentence_embedding_dimension() == 32


def test_progress_bar(nomic_like, capsys):
    SentenceEncoder.from_pretrained(nomic_like).encode(TEXTS, show_progress_bar=True)
    assert f"{len(TEXTS)}/{len(TEXTS)}" in capsys.readouterr().err


def test_cos_sim():
    a = np.array([[1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    b = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, -1.0]])
    sim = cos_sim(a, b)
    expected = torch.tensor([[1.0, 0.0, -(0.5**0.5)], [0.5**0.5, 0.5**0.5, -1.0]])
    assert sim.shape == (2, 3)
    torch.testing.assert_close(sim, expected)
    assert cos_sim([1.0, 0.0], [[0.0, 1.0]]).shape == (1, 1)  # vectors count as one row
    with pytest.raises(ValueError, match="matrices"):
        cos_sim(torch.zeros(2, 2, 2), torch.zeros(2, 2))


def test_sentence_pipelines(nomic_like):
    embed = pipeline("sentence-embeddings", model=nomic_like)
    encoder = SentenceEncoder.from_pretrained(nomic_like)
    expected = encoder.encode(TEXTS)
    np.testing.assert_allclose(np.array(embed(TEXTS)), expected, atol=1e-6)
    assert isinstance(embed(TEXTS[0]), list) and len(embed(TEXTS[0])) == 32
    assert embed(TEXTS, return_tensors=True).shape == (len(TEXTS), 32)
    query = embed("Paris", prompt_name="query")
    np.testing.assert_allclose(query, encoder.encode("Paris", prompt_name="query"), atol=1e-6)
    similar = pipeline("sentence-similarity", model=encoder)
    scores = similar({"source_sentence": TEXTS[0], "sentences": TEXTS[1:]})
    np.testing.assert_allclose(scores, cos_sim(expected[0], expected[1:])[0].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="source_sentence"):
        similar(TEXTS)


def test_unsupported_layouts(base_folder, tmp_path):
    dense = {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
    folder = write_st_folder(base_folder, tmp_path / "dense", extra_modules=[dense])
    with pytest.raises(ValueError, match="Dense"):
        SentenceEncoder.from_pretrained(folder)
    folder = write_st_folder(base_folder, tmp_path / "max", pooling="max")
    with pytest.raises(ValueError, match="pooling_mode_max_tokens"):
        SentenceEncoder.from_pretrained(folder)
    folder = write_st_folder(base_folder, tmp_path / "notok", subfolder="0_Transformer")
    (folder / "0_Transformer" / "tokenizer.json").unlink()
    with pytest.raises(MissingTokenizerError, match=r"0_Transformer.*tokenizer\.json"):
        SentenceEncoder.from_pretrained(folder)


def test_bad_inputs(nomic_like):
    encoder = SentenceEncoder.from_pretrained(nomic_like)
    with pytest.raises(ValueError, match="prompt_name='passage'.*document.*query"):
        encoder.encode(TEXTS, prompt_name="passage")
    with pytest.raises(ValueError, match="empty list"):
        encoder.encode([])
    with pytest.raises(TypeError, match=r"inputs\[1\]"):
        encoder.encode(["a", 3])
    with pytest.raises(TypeError, match="ModernBertModel"):
        SentenceEncoder(encoder.tokenizer, encoder.tokenizer)  # type: ignore[arg-type]
