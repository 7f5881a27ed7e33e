"""Sentence embeddings: `SentenceEncoder` reads sentence-transformers folders and encodes texts as they do.

A sentence-transformers folder (e.g. Alibaba-NLP/gte-modernbert-base, nomic-ai/modernbert-embed-base) holds:

- modules.json: the module chain, here Transformer → Pooling (→ Normalize);
- the transformer's config.json, weights and tokenizer in the root folder, or in the subfolder modules.json names
  (e.g. 0_Transformer/);
- 1_Pooling/config.json: pooling_mode_cls_token or pooling_mode_mean_tokens (and include_prompt);
- optionally sentence_bert_config.json (max_seq_length, do_lower_case) and config_sentence_transformers.json
  (prompts such as {"query": "search_query: ", "document": "search_document: "} and default_prompt_name).

A plain ModernBERT folder works too: mean pooling, no normalisation, as sentence-transformers would build it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..hub import CONFIG_NAME, resolve_folder
from ..model import ModernBertModel
from ..tokenizer import Tokenizer
from .base import (
    DEFAULT_BATCH_SIZE,
    Batch,
    Pipeline,
    as_text_list,
    check_lengths,
    check_text,
    default_device,
    input_name,
    load_tokenizer,
    resolve_device,
    run_batched,
    token_ids,
    tokenizer_for_folder,
)

Pooling = Literal["cls", "mean"]
_MODULE_TYPES = ("Transformer", "Pooling", "Normalize")


def cos_sim(a: Any, b: Any) -> Tensor:
    """Cosine similarity of every row of `a` with every row of `b`: a (n, dim) × b (m, dim) → (n, m) tensor.

    Accepts tensors, numpy arrays and lists; a single vector counts as one row (sentence-transformers' cos_sim).
    """
    a, b = _as_2d(a), _as_2d(b)
    return torch.mm(F.normalize(a, p=2, dim=1), F.normalize(b, p=2, dim=1).transpose(0, 1))


def _as_2d(x: Any) -> Tensor:
    if not isinstance(x, Tensor):
        x = torch.tensor(np.asarray(x))
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() != 2:
        raise ValueError(f"cos_sim expects vectors or (n, dim) matrices, got shape {tuple(x.shape)}")
    return x.float() if not x.is_floating_point() or x.dtype in (torch.float16, torch.bfloat16) else x


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None


class SentenceEncoder:
    """ModernBERT sentence embeddings: encoder → cls or mean pooling → optional L2 normalisation.

    Build it with `SentenceEncoder.from_pretrained(folder_or_hub_id)`, or from a loaded `ModernBertModel` and its
    `Tokenizer`. `encode` gives the same vectors as sentence-transformers' `SentenceTransformer.encode` on the same
    folder (texts are stripped, lower-cased if the folder says so, prefixed with the chosen prompt, truncated to
    max_seq_length).
    """

    def __init__(
        self,
        model: ModernBertModel,
        tokenizer: Tokenizer,
        *,
        pooling: Pooling = "mean",
        normalize: bool = False,
        max_seq_length: int | None = None,
        do_lower_case: bool = False,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        include_prompt: bool = True,
    ) -> None:
        if not isinstance(model, ModernBertModel):
            raise TypeError(
                f"SentenceEncoder needs a ModernBertModel (the bare encoder), got {type(model).__name__}; load "
                "it with ModernBertModel.from_pretrained(folder) or use SentenceEncoder.from_pretrained(folder)"
            )
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"tokenizer must be a modernbert Tokenizer, got {type(tokenizer).__name__}")
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling={pooling!r} must be 'cls' or 'mean'")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.pooling: Pooling = pooling
        self.normalize = bool(normalize)
        if max_seq_length is None:
            max_seq_length = min(model.config.max_position_embeddings, tokenizer.model_max_length)
        self.max_seq_length = int(max_seq_length)
        self.do_lower_case = bool(do_lower_case)
        self.prompts: dict[str, str] = dict(prompts or {})
        if default_prompt_name is not None and default_prompt_name not in self.prompts:
            raise ValueError(
                f"default_prompt_name={default_prompt_name!r} is not one of the prompts {sorted(self.prompts)}"
            )
        self.default_prompt_name = default_prompt_name
        self.include_prompt = bool(include_prompt)

    def __repr__(self) -> str:
        return (
            f"SentenceEncoder(model={getattr(self.model, 'name_or_path', '')!r}, pooling={self.pooling!r}, "
            f"normalize={self.normalize}, max_seq_length={self.max_seq_length}, dim={self.dim}, "
            f"prompts={sorted(self.prompts)})"
        )

    @property
    def dim(self) -> int:
        """Size of the embeddings."""
        return self.model.config.hidden_size

    def get_sentence_embedding_dimension(self) -> int:
        """Size of the embeddings (sentence-transformers' name)."""
        return self.dim

    @property
    def device(self) -> torch.device:
        """The device the model is on."""
        return self.model.device

    # ----- loading -----

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        device: str | int | torch.device | None = None,
        dtype: str | torch.dtype | None = "auto",
        attn_implementation: str | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        tokenizer: Tokenizer | str | os.PathLike | None = None,
        pooling: Pooling | None = None,
        normalize: bool | None = None,
        max_seq_length: int | None = None,
    ) -> SentenceEncoder:
        """Load a sentence-transformers folder (or a plain ModernBERT folder), local, bundled or from the hub.

        `pooling`, `normalize` and `max_seq_length` override what the folder says. `device` defaults to CUDA when
        available; `dtype` is as `from_pretrained` takes it ("auto": the checkpoint's dtype).
        """
        folder = resolve_folder(  # a hub snapshot holds every json and safetensors file, subfolders included
            name_or_path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
        )
        settings: dict[str, Any] = {"pooling": "mean", "normalize": False, "include_prompt": True}
        transformer_dir = folder
        modules_path = folder / "modules.json"
        if modules_path.is_file():
            modules = _read_json(modules_path)
            if not isinstance(modules, list):
                raise ValueError(f"{modules_path} must hold a list of modules")
            seen = []
            for module in sorted(modules, key=lambda m: m.get("idx", 0)):
                kind = str(module.get("type", "")).rsplit(".", 1)[-1]
                path = folder / module.get("path", "")
                if kind not in _MODULE_TYPES:
                    raise ValueError(
                        f"{modules_path} uses a {module.get('type')!r} module, which SentenceEncoder does not "
                        f"support (it runs {' → '.join(_MODULE_TYPES)})"
                    )
                seen.append(kind)
                if kind == "Transformer":
                    transformer_dir = path
                    st_config = path / "sentence_bert_config.json"
                    if st_config.is_file():
                        data = _read_json(st_config)
                        settings["max_seq_length"] = data.get("max_seq_length")
                        settings["do_lower_case"] = bool(data.get("do_lower_case", False))
                elif kind == "Pooling":
                    settings.update(_read_pooling(path / CONFIG_NAME))
                else:
                    settings["normalize"] = True
            if seen[:1] != ["Transformer"]:
                raise ValueError(f"{modules_path} must start with a Transformer module, found {seen}")
        elif (folder / "sentence_bert_config.json").is_file():
            data = _read_json(folder / "sentence_bert_config.json")
            settings["max_seq_length"] = data.get("max_seq_length")
            settings["do_lower_case"] = bool(data.get("do_lower_case", False))
        st_file = folder / "config_sentence_transformers.json"
        if st_file.is_file():
            data = _read_json(st_file)
            settings["prompts"] = data.get("prompts") or {}
            settings["default_prompt_name"] = data.get("default_prompt_name")
        if pooling is not None:
            settings["pooling"] = pooling
        if normalize is not None:
            settings["normalize"] = normalize
        if max_seq_length is not None:
            settings["max_seq_length"] = max_seq_length

        shown = os.fspath(name_or_path)
        tok = load_tokenizer(tokenizer) if tokenizer is not None else tokenizer_for_folder(transformer_dir, shown)
        load_kwargs: dict[str, Any] = {"dtype": dtype, "device": resolve_device(device) or default_device()}
        if attn_implementation is not None:
            load_kwargs["attn_implementation"] = attn_implementation
        model = ModernBertModel.from_pretrained(transformer_dir, **load_kwargs)
        model.name_or_path = shown
        return cls(model, tok, **settings)

    # ----- encoding -----

    def _prompt(self, prompt_name: str | None, prompt: str | None) -> str | None:
        if prompt is not None:
            return prompt
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None:
            return None
        if name not in self.prompts:
            raise ValueError(
                f"prompt_name={name!r} is not one of this model's prompts "
                f"{sorted(self.prompts) or '(it has none)'}; pass prompt='...' to give the text prefix directly"
            )
        return self.prompts[name]

    def tokenize(self, texts: list[str], prompt: str | None = None) -> list[list[int]]:
        """Token ids as sentence-transformers builds them: strip, lower-case if configured, prefix, truncate."""
        texts = [t.strip() for t in texts]
        if self.do_lower_case:
            texts = [t.lower() for t in texts]
        if prompt:
            texts = [prompt + t for t in texts]
        encoded = self.tokenizer(texts, truncation="longest_first", max_length=self.max_seq_length,
                                 return_attention_mask=False)
        return encoded["input_ids"]

    def encode(
        self,
        sentences: str | list[str],
        batch_size: int = 32,
        show_progress_bar: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        normalize_embeddings: bool = False,
        prompt_name: str | None = None,
        prompt: str | None = None,
    ) -> np.ndarray | Tensor:
        """Embed texts: a (n, dim) array for a list of n texts, a (dim,) vector for one text.

        Args:
            sentences: a str or a list of str; or a list of token-id lists, already tokenized as `tokenize` gives
                them (stripped, prompt included, special tokens included, cut): they are run as given, and the
                prompt is then only used to leave it out of the pooling when the folder says include_prompt=False.
            batch_size: texts per forward pass (they are sorted by length first).
            show_progress_bar: show progress (tqdm if installed, else a counter on stderr).
            convert_to_numpy: return a float32 numpy array (the default).
            convert_to_tensor: return a torch tensor (on the model's device) instead.
            normalize_embeddings: L2-normalise (the folder's Normalize module already does it when present).
            prompt_name: a key of the folder's prompts (e.g. "query", "document"); default: its default prompt.
            prompt: a text prefix given directly (overrides prompt_name).
        """
        ids = token_ids(sentences) if isinstance(sentences, list) else None
        texts, batched = (ids, True) if ids is not None else as_text_list(sentences)
        if ids is None:
            for i, text in enumerate(texts):
                check_text(text, input_name(i, not batched))
        prompt_text = self._prompt(prompt_name, prompt)
        sequences = ids if ids is not None else self.tokenize(texts, prompt_text)
        check_lengths(sequences, self.model.config.max_position_embeddings, lambda i: input_name(i, not batched),
                      lambda limit: f"pass max_seq_length={limit} or less (texts are cut to max_seq_length tokens)")
        skip = 0
        if prompt_text and not self.include_prompt:
            skip = len(self.tokenizer([prompt_text], return_attention_mask=False)["input_ids"][0]) - 1
        normalize = self.normalize or normalize_embeddings
        model, pooling = self.model, self.pooling

        def step(batch: Batch) -> list[Tensor]:
            hidden = model(input_ids=batch.input_ids, cu_seqlens=batch.cu_seqlens).last_hidden_state.float()
            out = []
            for h in batch.split(hidden):
                if pooling == "cls":
                    out.append(h[0])
                else:
                    h = h[skip:]  # without the prompt when the folder says include_prompt=False
                    out.append(h.sum(0) / max(h.shape[0], 1))
            embeddings = torch.stack(out)
            if normalize:
                embeddings = F.normalize(embeddings, p=2, dim=1)
            return list(embeddings)

        if texts:
            rows = run_batched(sequences, step, batch_size=batch_size, device=self.device,
                               progress=show_progress_bar, desc="encode")
            embeddings = torch.stack(rows)
        else:  # pragma: no cover - as_text_list rejects empty lists
            embeddings = torch.zeros(0, self.dim, device=self.device)
        if not batched:
            embeddings = embeddings[0]
        if convert_to_tensor:
            return embeddings
        if convert_to_numpy:
            return embeddings.cpu().numpy()
        return embeddings

    def encode_query(self, sentences: str | list[str], **kwargs: Any) -> np.ndarray | Tensor:
        """`encode` with the folder's "query" prompt (when it has one)."""
        if "prompt" not in kwargs and "prompt_name" not in kwargs and "query" in self.prompts:
            kwargs["prompt_name"] = "query"
        return self.encode(sentences, **kwargs)

    def encode_document(self, sentences: str | list[str], **kwargs: Any) -> np.ndarray | Tensor:
        """`encode` with the folder's "document" (or "passage") prompt (when it has one)."""
        if "prompt" not in kwargs and "prompt_name" not in kwargs:
            for name in ("document", "passage"):
                if name in self.prompts:
                    kwargs["prompt_name"] = name
                    break
        return self.encode(sentences, **kwargs)

    def similarity(self, a: Any, b: Any) -> Tensor:
        """Cosine similarity matrix of two sets of embeddings (see `cos_sim`)."""
        return cos_sim(a, b)


def _read_pooling(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"the Pooling module's config is missing: {path}")
    data = _read_json(path)
    modes = [k for k, v in data.items() if k.startswith("pooling_mode_") and v]
    if modes == ["pooling_mode_cls_token"]:
        pooling = "cls"
    elif modes == ["pooling_mode_mean_tokens"]:
        pooling = "mean"
    else:
        raise ValueError(
            f"{path} asks for pooling {modes or 'none'}; SentenceEncoder supports exactly one of "
            "pooling_mode_cls_token or pooling_mode_mean_tokens"
        )
    return {"pooling": pooling, "include_prompt": bool(data.get("include_prompt", True))}


# ----- pipelines -----


class SentenceEmbeddingPipeline(Pipeline):
    """One pooled (and, if the folder says so, normalised) vector per text, via `SentenceEncoder`.

    Call options: normalize_embeddings, prompt_name, prompt, return_tensors (a tensor instead of lists).
    Returns a list of floats for one text, a list of such lists for a list of texts (`run`: one list of floats
    per text).
    """

    task = "sentence-embeddings"
    model_class = ModernBertModel

    def __init__(
        self,
        encoder: SentenceEncoder,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = False,
        **options: Any,
    ) -> None:
        if not isinstance(encoder, SentenceEncoder):
            raise TypeError(f"the {self.task!r} pipeline needs a SentenceEncoder, got {type(encoder).__name__}")
        self.encoder = encoder
        super().__init__(encoder.model, encoder.tokenizer, batch_size=batch_size, progress=progress, **options)

    def _sanitize(
        self,
        normalize_embeddings: bool | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        return_tensors: bool | None = None,
    ) -> dict[str, Any]:
        options = {"normalize_embeddings": normalize_embeddings, "prompt_name": prompt_name, "prompt": prompt,
                   "return_tensors": return_tensors}
        return {k: v for k, v in options.items() if v is not None}

    def run(self, inputs: list[str] | list[list[int]], **options: Any) -> list[list[float]]:
        """Embed each text: per text, its vector as a list of `dim` floats (unit length when normalised).

        `inputs` may also be lists of token ids, already tokenized as `SentenceEncoder.tokenize` gives them: they
        run as given (see `SentenceEncoder.encode`).

        Options as `__call__`'s; return_tensors=True is refused, as `run` returns plain lists.
        """
        if options.get("return_tensors"):
            raise ValueError(
                "run returns plain (JSON-safe) lists; for a tensor call the pipeline: pipe(texts, return_tensors=True)"
            )
        return super().run(inputs, **options)

    def __call__(self, inputs: str | list[str], **kwargs: Any) -> Any:
        """Embed one text or a list of texts."""
        options, batch_size, progress = self._options(kwargs)
        out = self._embed(inputs, options, batch_size, progress)
        return out.cpu() if options.get("return_tensors", False) else out.tolist()

    def _predict(
        self, items: list[Any], options: dict[str, Any], batch_size: int, progress: bool, *, single: bool = False
    ) -> list[Tensor]:
        return list(self._embed(items, options, batch_size, progress).cpu())  # (n, dim) → one (dim,) row per text

    def _embed(self, inputs: str | list[str], options: dict[str, Any], batch_size: int, progress: bool) -> Tensor:
        """`SentenceEncoder.encode` as a tensor: (n, dim) for a list of n texts, (dim,) for one text."""
        encode_options = {k: v for k, v in options.items() if k != "return_tensors"}
        return self.encoder.encode(inputs, batch_size=batch_size, show_progress_bar=progress, convert_to_tensor=True,
                                   **encode_options)


class SentenceSimilarityPipeline(SentenceEmbeddingPipeline):
    """Cosine similarity of a source sentence with each of several sentences (the hub's sentence-similarity).

    Input: {"source_sentence": str, "sentences": [str, ...]}. Returns a list of floats, one per sentence.
    """

    task = "sentence-similarity"

    def run(self, inputs: list[dict[str, Any]], **options: Any) -> list[list[float]]:  # type: ignore[override]
        """Per `{"source_sentence": str, "sentences": [str, ...]}`, its similarities: a list of floats, one per
        sentence, in their order (cosine similarity, -1 to 1). Options as `__call__`'s."""
        return super().run(inputs, **options)

    def __call__(self, inputs: dict[str, Any], **kwargs: Any) -> list[float]:  # type: ignore[override]
        """Similarity of inputs["source_sentence"] with every text of inputs["sentences"]."""
        options, batch_size, progress = self._options(kwargs)
        return self._predict([inputs], options, batch_size, progress, single=True)[0]

    def _predict(
        self, items: list[Any], options: dict[str, Any], batch_size: int, progress: bool, *, single: bool = False
    ) -> list[list[float]]:
        results = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or "source_sentence" not in item or "sentences" not in item:
                where = "" if single else f"inputs[{i}]: "
                raise ValueError(
                    f"{where}sentence-similarity takes {{'source_sentence': 'a text', 'sentences': ['text 1', "
                    "'text 2', ...]}"
                )
            source = self._embed(item["source_sentence"], options, batch_size, progress)
            others = self._embed(item["sentences"], options, batch_size, progress)
            results.append(cos_sim(source, others)[0].tolist())
        return results
