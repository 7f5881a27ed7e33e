"""What a model folder serves: its kind, its pipelines, and per task how an input is counted and run.

The folder decides: a sentence-transformers folder or a bare encoder serves embeddings; a sequence classifier
serves predictions (and reranking when it has one label); an MLM serves fill-mask and embeddings; a token
classifier serves NER; a QA model serves question answering. Every task runs through its pipeline's
`Pipeline.run`; this module holds no model code.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..hub import CONFIG_NAME, read_json, resolve_folder

# config.json `architectures` → (the model's kind as /info and errors name it, the tasks it serves)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ModernBertModel": ("embedding", ("embed", "embed_all")),
    "ModernBertForMaskedLM": ("masked-lm", ("fill", "embed", "embed_all", "sparse")),
    "ModernBertForSequenceClassification": ("classifier", ("classify",)),
    "ModernBertForTokenClassification": ("token-classifier", ("ner",)),
    "ModernBertForQuestionAnswering": ("question-answering", ("qa",)),
}
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "sentence_bert_config.json")
NO_LIMIT = 1 << 30  # a max_length that never cuts: exact token counts without the tokenizer's warning


@dataclass
class Tokens:
    """One input, tokenized once: its ids, untruncated, and how many special tokens lead and end them (kept in
    place when the input is cut)."""

    ids: list[int]
    head: int = 0
    tail: int = 0

    def cut(self, limit: int, direction: str = "right") -> list[int]:
        """The ids cut to `limit` tokens: "right" keeps the start of the text, "left" its end; the leading and
        ending special tokens stay."""
        ids, head, tail = self.ids, self.head, self.tail
        if len(ids) <= limit:
            return ids
        if limit <= head + tail:  # no room for any text: a plain cut
            return ids[:limit] if direction == "right" else ids[-limit:]
        keep = limit - head - tail
        body = ids[head:len(ids) - tail]
        body = body[:keep] if direction == "right" else body[len(body) - keep:]
        return ids[:head] + body + ids[len(ids) - tail:]


@dataclass
class Task:
    """One thing the model can do: how an input is counted (or tokenized), and how a list of them runs.

    count: (items, options) → real tokens per item, untruncated (for the length check and the batch budget).
    run: (items, options) → one result per item (the pipeline's `run`, `batch_size` = len(items)).
    max_length: the most tokens an input may have (longer ones are cut when truncating, refused otherwise).
    tokenize: (items, options) → one `Tokens` per item, for a task whose pipeline takes token ids: the server
        tokenizes once, cuts the ids in either direction and hands them to `run` (None: `run` takes the items
        and tokenizes them itself, only right truncation).
    """

    count: Callable[[list[Any], dict[str, Any]], list[int]]
    run: Callable[[list[Any], dict[str, Any]], list[Any]]
    max_length: int
    tokenize: Callable[[list[Any], dict[str, Any]], list[Tokens]] | None = None


class Served:
    """A loaded model folder and the tasks it serves.

    model_id: what was asked for (folder, bundled name or hub id). kind: "embedding", "classifier", "masked-lm",
    "token-classifier" or "question-answering". architecture: the config's class name. tasks: task name → Task.
    """

    def __init__(self, model_id: str, kind: str, architecture: str, tasks: dict[str, Task], tokenizer: Any,
                 config: Any, *, dtype: str, device: str, max_input_length: int, pooling: str | None = None,
                 prompts: dict[str, str] | None = None) -> None:
        self.model_id, self.kind, self.architecture = model_id, kind, architecture
        self.tasks, self.tokenizer, self.config = tasks, tokenizer, config
        self.dtype, self.device, self.pooling = dtype, device, pooling
        self.max_input_length = max_input_length  # the longest input, in tokens, of the model's main task
        self.prompts: dict[str, str] = dict(prompts or {})  # the sentence-transformers prompts, by name

    def run(self, task: str, items: list[Any], options: dict[str, Any]) -> list[Any]:
        """The batcher's runner: `items` of one task with the same options."""
        return self.tasks[task].run(items, options)


def splade(mlm: Any, sequences: list[list[int]]) -> list[list[dict[str, float]]]:
    """SPLADE pooling over an MLM's vocabulary, as TEI's `--pooling splade`: per sequence, max over its tokens of
    log(1 + relu(logits)), kept where it is above zero, as [{"index": token id, "value": weight}] by index."""
    import torch

    from ..pipelines.base import Batch, run_batched

    def step(batch: Batch) -> list[list[dict[str, float]]]:
        logits = mlm(input_ids=batch.input_ids, cu_seqlens=batch.cu_seqlens).logits  # (tokens, vocab)
        weights = torch.log1p(torch.relu(logits.float()))
        out = []
        for w in batch.split(weights):
            pooled = w.max(0).values  # (vocab,)
            index = torch.nonzero(pooled > 0).flatten()
            out.append([{"index": i, "value": v} for i, v in zip(index.tolist(), pooled[index].tolist())])
        return out

    return run_batched(sequences, step, batch_size=max(len(sequences), 1), device=mlm.device)


def special_ends(tok: Any) -> tuple[int, int]:
    """How many special tokens the tokenizer puts before and after a single text ([CLS] … [SEP]: 1, 1)."""
    bare = tok(["a"], add_special_tokens=False, return_attention_mask=False)["input_ids"][0]
    full = tok(["a"], return_attention_mask=False)["input_ids"][0]
    for head in range(len(full) - len(bare) + 1):
        if full[head:head + len(bare)] == bare:
            return head, len(full) - head - len(bare)
    return 0, 0  # pragma: no cover - a post-processor that changes the text's own tokens


def architecture_of(folder: Path) -> tuple[str, bool]:
    """(the config's architecture, whether the folder is a sentence-transformers folder)."""
    sentence = any((folder / name).is_file() for name in SENTENCE_TRANSFORMERS_FILES)
    config_path = folder / CONFIG_NAME
    if not config_path.is_file() and sentence:  # the transformer may live in a subfolder (0_Transformer/)
        return "ModernBertModel", True
    config = read_json(config_path, "model config")
    names = [a for a in (config.get("architectures") or []) if a in KINDS]
    if sentence:
        return "ModernBertModel", True
    if not names:
        raise ValueError(
            f"{folder} is not a model this server can serve: its config.json names architectures "
            f"{config.get('architectures')}; it serves {', '.join(KINDS)} or a sentence-transformers folder"
        )
    return names[0], False


def load(model: str, *, device: str | None = None, dtype: str = "auto", pooling: str | None = None,
         tokenizer: str | None = None) -> Served:
    """Load `model` (a folder, bundled name or hub id) and build the pipelines of what it serves.

    pooling: "cls" or "mean" for the embeddings of a bare encoder or an MLM (default: the folder's, else mean).
    """
    from ..model import (
        ModernBertForMaskedLM,
        ModernBertForQuestionAnswering,
        ModernBertForSequenceClassification,
        ModernBertForTokenClassification,
    )
    from ..pipelines import (
        FeatureExtractionPipeline,
        FillMaskPipeline,
        QuestionAnsweringPipeline,
        SentenceEmbeddingPipeline,
        SentenceEncoder,
        TextClassificationPipeline,
        TokenClassificationPipeline,
    )
    from ..pipelines.base import default_device, load_tokenizer, resolve_device, tokenizer_for_folder

    folder = resolve_folder(model)
    architecture, sentence = architecture_of(folder)
    kind, names = KINDS[architecture]
    device_ = resolve_device(device) or default_device()
    load_kwargs: dict[str, Any] = {"dtype": dtype, "device": device_}
    tasks: dict[str, Task] = {}

    if architecture == "ModernBertModel":
        # normalize=False: each request says whether to normalise (TEI's `normalize`, true by default)
        encoder = SentenceEncoder.from_pretrained(os.fspath(folder), tokenizer=tokenizer, pooling=pooling,
                                                  normalize=False, **load_kwargs)
        encoder.model.name_or_path = model
        tok, net, head = encoder.tokenizer, encoder.model, None
    else:
        tok = load_tokenizer(tokenizer) if tokenizer is not None else tokenizer_for_folder(folder, model)
        cls = {
            "ModernBertForMaskedLM": ModernBertForMaskedLM,
            "ModernBertForSequenceClassification": ModernBertForSequenceClassification,
            "ModernBertForTokenClassification": ModernBertForTokenClassification,
            "ModernBertForQuestionAnswering": ModernBertForQuestionAnswering,
        }[architecture]
        head = cls.from_pretrained(folder, **load_kwargs)
        head.name_or_path = model
        net = head.model
        encoder = SentenceEncoder(net, tok, pooling=pooling or "mean") if "embed" in names else None
    config = net.config
    limit = min(tok.model_max_length, config.max_position_embeddings)
    head_specials, tail_specials = special_ends(tok)

    def untruncated(inputs: list[Any]) -> list[list[int]]:
        """The ids of texts (or (text, pair) tuples) with their special tokens, never cut."""
        return tok(inputs, truncation=False, max_length=NO_LIMIT, return_attention_mask=False)["input_ids"]

    def tokens_of(texts: list[str], given: list[list[int] | None]) -> list[Tokens]:
        """Texts tokenized with their special tokens; token ids a request gave stay as they are."""
        encoded = iter(untruncated(texts) if texts else [])
        return [Tokens(ids) if ids is not None else Tokens(next(encoded), head_specials, tail_specials)
                for ids in given]

    def tokenizer_inputs(items: list[Any]) -> list[str | tuple[str, str]]:
        return [(i["text"], i["text_pair"]) if isinstance(i, dict) and i.get("text_pair") else
                (i["text"] if isinstance(i, dict) else i) for i in items]

    def counter(pairs: bool = False) -> Callable[[list[Any], dict[str, Any]], list[int]]:
        def count(items: list[Any], options: dict[str, Any]) -> list[int]:
            inputs = tokenizer_inputs(items) if pairs else items
            return [len(ids) for ids in untruncated(inputs)]
        return count

    def tokenize_plain(items: list[str | list[int]], options: dict[str, Any]) -> list[Tokens]:
        return tokens_of([i for i in items if isinstance(i, str)], [i if isinstance(i, list) else None for i in items])

    if encoder is not None:
        embed = SentenceEmbeddingPipeline(encoder)
        features = FeatureExtractionPipeline(net, tok)

        def tokenize_embed(items: list[str | list[int]], options: dict[str, Any]) -> list[Tokens]:
            # as SentenceEncoder.tokenize (stripped, lower-cased if configured, prompt first), not yet cut. Token
            # ids run as given; with a prompt they are decoded and read as a text (as TEI does).
            prompt = encoder._prompt(options.get("prompt_name"), None) or ""
            if prompt:
                items = [tok.decode(i, skip_special_tokens=True) if isinstance(i, list) else i for i in items]
            texts = [prompt + (t.strip().lower() if encoder.do_lower_case else t.strip())
                     for t in items if isinstance(t, str)]
            return tokens_of(texts, [i if isinstance(i, list) else None for i in items])

        def run_embed(items: list[list[int]], options: dict[str, Any]) -> list[Any]:
            return embed.run(items, batch_size=len(items), normalize_embeddings=options["normalize"],
                             prompt_name=options.get("prompt_name"))

        def run_features(items: list[list[int]], options: dict[str, Any]) -> list[Any]:
            return features.run(items, batch_size=len(items))

        tasks["embed"] = Task(counter(), run_embed, encoder.max_seq_length, tokenize_embed)
        tasks["embed_all"] = Task(counter(), run_features, limit, tokenize_plain)

    if architecture == "ModernBertForMaskedLM":
        fill = FillMaskPipeline(head, tok)

        def run_fill(items: list[list[int]], options: dict[str, Any]) -> list[Any]:
            return fill.run(items, batch_size=len(items), top_k=options["top_k"])

        def tokenize_fill(items: list[str], options: dict[str, Any]) -> list[Tokens]:
            encoded = tokenize_plain(items, options)
            for k, e in enumerate(encoded):
                if options["truncate"] and len(e.ids) > limit and tok.mask_token_id not in e.cut(limit):
                    raise ValueError(f"input {k} has no {tok.mask_token} in its first {limit} tokens (the model's "
                                     "maximum), so cutting it would leave nothing to fill: shorten the text before "
                                     "its mask")
            return encoded

        tasks["fill"] = Task(counter(), run_fill, limit, tokenize_fill)
        tasks["sparse"] = Task(counter(), lambda items, options: splade(head, items), limit, tokenize_plain)
    elif architecture == "ModernBertForSequenceClassification":
        classify = TextClassificationPipeline(head, tok)

        def run_classify(items: list[Any], options: dict[str, Any]) -> list[Any]:
            if options["raw_scores"]:
                function = "none"
            else:
                function = "sigmoid" if config.num_labels == 1 else "softmax"
            return classify.run(items, batch_size=len(items), top_k=None, function_to_apply=function)

        def tokenize_classify(items: list[Any], options: dict[str, Any]) -> list[Tokens]:
            # a pair too long is cut as the tokenizer cuts it (the longer text first), not from one end
            inputs = tokenizer_inputs(items)
            encoded = untruncated(inputs)
            long = [k for k, ids in enumerate(encoded) if len(ids) > limit] if options["truncate"] else []
            if long:
                cut = tok([inputs[k] for k in long], truncation=True, max_length=limit, return_attention_mask=False)
                for k, ids in zip(long, cut["input_ids"]):
                    encoded[k] = ids
            return [Tokens(ids) for ids in encoded]

        tasks["classify"] = Task(counter(pairs=True), run_classify, limit, tokenize_classify)
    elif architecture == "ModernBertForTokenClassification":
        ner = TokenClassificationPipeline(head, tok)

        def run_ner(items: list[str], options: dict[str, Any]) -> list[Any]:
            return ner.run(items, batch_size=len(items), aggregation_strategy=options["aggregation_strategy"])

        tasks["ner"] = Task(counter(), run_ner, limit)
    elif architecture == "ModernBertForQuestionAnswering":
        qa = QuestionAnsweringPipeline(head, tok)

        def count_qa(items: list[dict[str, str]], options: dict[str, Any]) -> list[int]:
            return counter(pairs=True)([{"text": i["question"], "text_pair": i["context"]} for i in items], options)

        def run_qa(items: list[dict[str, str]], options: dict[str, Any]) -> list[Any]:
            return qa.run(items, batch_size=len(items), top_k=options["top_k"])

        # a long context is read in windows: there is no limit on its length
        tasks["qa"] = Task(count_qa, run_qa, NO_LIMIT)

    dtype_shown = str(next(net.parameters()).dtype).removeprefix("torch.")
    main = tasks["embed"] if architecture == "ModernBertModel" else None
    return Served(model, kind, architecture, tasks, tok, config, dtype=dtype_shown, device=str(device_),
                  max_input_length=main.max_length if main is not None else limit,
                  pooling=encoder.pooling if encoder is not None else None,
                  prompts=encoder.prompts if encoder is not None else None)
