"""The `sentence-embedding` and `reranker` tasks of `modernbert finetune`: texts that go together.

- `sentence-embedding`: rows of (anchor, positive[, negative]): the `anchor`, `positive`, `negative` columns
  when present, else the first, second (and third) columns, as sentence-transformers takes them. The encoder
  (`ModernBertModel`) with mean pooling and a normalisation is trained with the in-batch-negatives loss of
  sentence-transformers' MultipleNegativesRankingLoss: cross-entropy over `scale` (20) times the cosine
  similarities of every anchor with every positive (and negative) of its batch, its own positive the target.
  The export is a sentence-transformers folder (modules.json: Transformer, Pooling (mean), Normalize) that
  `modernbert.pipelines.SentenceEncoder` and sentence-transformers load.
- `reranker`: a cross-encoder: rows of (query, passage, label): `query` and `passage` when present, else the
  first two columns that are not the label; labels are relevances in [0, 1]; sequence classification with one
  output. The loss is binary cross-entropy on each pair (`reranker_loss="bce"`), or listwise
  (`reranker_loss="listwise"`): the rows of one query text form one example, and its loss is the cross-entropy
  of the softmax of its passages' scores against its relevances, normalised to sum to 1 (sentence-transformers'
  CrossEntropyLoss of a query with its candidates, for one relevant passage). A listwise score is shift-free:
  it ranks a query's passages, but its sigmoid is no calibrated probability.

Both evaluate retrieval: `eval_mrr@10`, `eval_recall@1` and `eval_recall@10` (every validation anchor against
every validation positive and negative; for the reranker, the passages of each query ranked by their scores).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .. import hub
from . import finetune_data as fd
from .finetune import Split, Task, copy_tokenizer

SCALE = 20.0  # MultipleNegativesRankingLoss's default: cosine similarities times 20


def retrieval_metrics(ranks: list[list[int]], ks: tuple[int, ...] = (1, 10)) -> dict[str, float]:
    """`mrr@10` and `recall@k` of queries, each given the 1-based ranks of its relevant candidates.

    mrr@10: mean over queries of 1 / (rank of the first relevant candidate), 0 beyond rank 10.
    recall@k: mean over queries of the share of its relevant candidates ranked k or better.
    """
    ranks = [sorted(r) for r in ranks if r]
    if not ranks:
        return {"mrr@10": 0.0, **{f"recall@{k}": 0.0 for k in ks}}
    out = {"mrr@10": sum(1.0 / r[0] if r[0] <= 10 else 0.0 for r in ranks) / len(ranks)}
    for k in ks:
        out[f"recall@{k}"] = sum(sum(x <= k for x in r) / len(r) for r in ranks) / len(ranks)
    return out


def _rank_of(scores: torch.Tensor, target: int) -> int:
    """1 + the candidates scored strictly above the target (ties in its favour)."""
    return 1 + int((scores > scores[target]).sum())


def _column(rows: fd.Rows, given: str | None, name: str, position: int, flag: str, skip: str | None = None,
            ) -> str | None:
    if given is not None:
        if given not in rows.columns:
            raise fd.missing_column(rows, given, flag)
        return given
    if name in rows.columns:
        return name
    others = [c for c in rows.columns if c != skip]
    return others[position] if position < len(others) else None


@dataclass
class PairSplit:
    """A tokenised split of text groups: `ids[i]` holds the token ids of each text of example i."""

    rows: fd.Rows
    ids: list[list[list[int]]]
    labels: Any

    @property
    def lengths(self) -> list[int]:
        return [sum(len(x) for x in group) for group in self.ids]


def _mean_pool(hidden: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
    """(tokens, hidden) → (sequences, hidden): the mean over each sequence's tokens, special tokens included
    (sentence-transformers' mean pooling over the attention mask)."""
    cu = cu_seqlens.to(hidden.device).long()
    lengths = cu[1:] - cu[:-1]
    seq = torch.repeat_interleave(torch.arange(len(lengths), device=hidden.device), lengths)
    sums = hidden.new_zeros(len(lengths), hidden.shape[-1]).index_add_(0, seq, hidden)
    return sums / lengths.to(hidden.dtype).unsqueeze(1)


class SentenceEmbedding(Task):
    """Contrastive training of the encoder on (anchor, positive[, negative]) texts."""

    name = "sentence-embedding"
    architecture = "ModernBertModel"
    auto_class = "SentenceEncoder"
    pipeline_tag = "sentence-similarity"
    couples_examples = True  # in-batch negatives

    def __init__(self, cfg: Any, tokenizer: Any, max_length: int) -> None:
        self.cfg, self.tokenizer, self.max_length = cfg, tokenizer, max_length
        train = fd.read_rows(cfg.train, "train data")
        self.anchor = _column(train, cfg.text_column, "anchor", 0, "--text-column")
        self.positive = _column(train, cfg.text_pair_column, "positive", 1, "--text-pair-column")
        if self.positive is None:
            raise fd.DataError(f"{train.name}: one column only; expected (anchor, positive[, negative]) columns")
        self.negative = _column(train, cfg.negative_column, "negative", 2, "--negative-column")
        self.columns = [c for c in (self.anchor, self.positive, self.negative) if c is not None]
        self.train = self._split(train)
        self.validation = None if cfg.validation is None else self._split(fd.read_rows(cfg.validation,
                                                                                       "validation data"))
        self.test = None if cfg.test is None else self._split(fd.read_rows(cfg.test, "test data"))

    def _split(self, rows: fd.Rows) -> PairSplit:
        columns = [fd.texts(rows, c, f) for c, f in zip(self.columns, ("--text-column", "--text-pair-column",
                                                                        "--negative-column"))]
        encoded = [self.tokenizer(col, truncation=True, max_length=self.max_length)["input_ids"] for col in columns]
        groups = [[list(enc[i]) for enc in encoded] for i in range(len(rows))]
        return PairSplit(rows, groups, None)

    def model_options(self) -> dict[str, Any]:
        return {}

    def load_model(self, folder: Path) -> torch.nn.Module:
        return self.model_class().from_pretrained(str(folder), dtype=torch.float32)

    def pack(self, split: PairSplit, index: list[int]) -> fd.Packed:
        """The anchors of the examples, then their positives, then their negatives, as one packed batch."""
        seqs = [split.ids[i][k] for k in range(len(self.columns)) for i in index]
        packed = fd.pack(seqs, range(len(seqs)))
        return fd.Packed(torch.tensor(list(index)), packed.input_ids, packed.cu_seqlens, packed.max_seqlen)

    def forward(self, model: torch.nn.Module, batch: fd.Packed, device: torch.device) -> torch.Tensor:
        """The mean-pooled embeddings (sequences, hidden) of a packed batch."""
        hidden = model(input_ids=batch.input_ids.to(device), cu_seqlens=batch.cu_seqlens.to(device),
                       max_seqlen=batch.max_seqlen).last_hidden_state
        return _mean_pool(hidden, batch.cu_seqlens)

    def batch_labels(self, split: PairSplit, index: torch.Tensor) -> torch.Tensor:
        return torch.arange(len(index))  # anchor i's positive is candidate i

    def loss_sum(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """MultipleNegativesRankingLoss times the anchors: every anchor against every positive and negative."""
        n = labels.shape[0]
        emb = F.normalize(emb.float(), dim=-1)
        scores = SCALE * emb[:n] @ emb[n:].T  # (anchors, candidates)
        return F.cross_entropy(scores, labels, reduction="sum")

    def outputs(self, emb: torch.Tensor, batch: fd.Packed) -> list[torch.Tensor]:
        """(texts, hidden) per example: its anchor, positive (and negative) embeddings."""
        n = len(batch.index)
        emb = emb.float().cpu()
        return [emb[torch.arange(j, emb.shape[0], n)] for j in range(n)]

    def metric_names(self) -> list[str]:
        return ["eval_loss", "eval_mrr@10", "eval_recall@1", "eval_recall@10"]

    def evaluate(self, outputs: list[torch.Tensor], split: PairSplit) -> dict[str, float]:
        """The loss and retrieval metrics of every anchor against all the split's positives and negatives."""
        emb = torch.stack(outputs)  # (examples, texts, hidden)
        n = emb.shape[0]
        flat = torch.cat([emb[:, 0], *(emb[:, k] for k in range(1, emb.shape[1]))])  # anchors, then candidates
        labels = torch.arange(n)
        loss = float(self.loss_sum(flat, labels)) / n
        normed = F.normalize(flat, dim=-1)
        scores = normed[:n] @ normed[n:].T
        ranks = [[_rank_of(scores[i], i)] for i in range(n)]
        return {"loss": loss, **retrieval_metrics(ranks)}

    def predictions(self, outputs: list[torch.Tensor], split: PairSplit) -> list[dict[str, Any]]:
        preds = []
        for i, group in enumerate(outputs):
            g = F.normalize(group, dim=-1)
            preds.append({"index": i, "score": float(g[0] @ g[1]),
                          **({"negative_score": float(g[0] @ g[2])} if g.shape[0] > 2 else {})})
        return preds

    def export(self, model: torch.nn.Module, out: Path, model_dir: Path) -> None:
        """A sentence-transformers folder: the encoder, mean pooling, normalisation."""
        model.config = model.config.replace(architectures=[self.architecture])
        model.save_pretrained(str(out))
        copy_tokenizer(model_dir, out)
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]
        hub.write_json_atomic(out / hub.ST_MODULES_FILE, modules, sort_keys=False)
        hub.write_json_atomic(out / "sentence_bert_config.json",
                              {"max_seq_length": self.max_length, "do_lower_case": False}, sort_keys=False)
        (out / "1_Pooling").mkdir(exist_ok=True)
        hub.write_json_atomic(out / "1_Pooling" / hub.CONFIG_NAME, {
            "word_embedding_dimension": model.config.hidden_size, "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False, "include_prompt": True}, sort_keys=False)
        (out / "2_Normalize").mkdir(exist_ok=True)
        hub.write_json_atomic(out / "config_sentence_transformers.json",
                              {"prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"},
                              sort_keys=False)

    def describe(self) -> dict[str, Any]:
        return {"columns": {"anchor": self.anchor, "positive": self.positive, "negative": self.negative},
                "problem_type": "in-batch negatives (MultipleNegativesRankingLoss, scale 20)", "labels": []}


class Reranker(Task):
    """A cross-encoder scoring (query, passage) pairs: one logit, binary cross-entropy or listwise."""

    name = "reranker"
    architecture = "ModernBertForSequenceClassification"
    auto_class = "AutoModelForSequenceClassification"
    pipeline_tag = "text-ranking"

    def __init__(self, cfg: Any, tokenizer: Any, max_length: int) -> None:
        self.cfg, self.tokenizer, self.max_length = cfg, tokenizer, max_length
        self.listwise = cfg.reranker_loss == "listwise"
        self.label_column = cfg.label_column or "label"
        train = fd.read_rows(cfg.train, "train data")
        if self.label_column not in train.columns:
            raise fd.missing_column(train, self.label_column, "--label-column")
        self.query = _column(train, cfg.text_column, "query", 0, "--text-column", skip=self.label_column)
        self.passage = _column(train, cfg.text_pair_column, "passage", 1, "--text-pair-column",
                               skip=self.label_column)
        if self.passage is None:
            raise fd.DataError(f"{train.name}: expected a query column and a passage column besides the label")
        self.train = self._split(train)
        self.validation = None if cfg.validation is None else self._split(fd.read_rows(cfg.validation,
                                                                                       "validation data"))
        self.test = None if cfg.test is None else self._split(fd.read_rows(cfg.test, "test data"),
                                                              need_labels=False)

    def _split(self, rows: fd.Rows, need_labels: bool = True) -> Split | QueryGroups:
        queries = fd.texts(rows, self.query, "--text-column")
        passages = fd.texts(rows, self.passage, "--text-pair-column")
        enc = self.tokenizer(queries, passages, truncation=True, max_length=self.max_length)
        labels = None
        if need_labels or all(self.label_column in r for r in rows.rows):
            labels = fd.LabelSpace("regression", ["score"]).encode(rows, self.label_column, "training")
            for v, src in zip(labels.tolist(), rows.sources):
                if not 0.0 <= v <= 1.0:
                    raise fd.DataError(f"{src.where(self.label_column)}: relevance {v}; expected a relevance in "
                                       "[0, 1] (1: the passage answers the query)")
        ids = [list(x) for x in enc["input_ids"]]
        if self.listwise:
            return QueryGroups.of(rows, queries, ids, labels)
        split = Split(rows, ids, labels)
        split.queries = queries  # type: ignore[attr-defined]
        return split

    def model_options(self) -> dict[str, Any]:
        return {"num_labels": 1}

    def load_model(self, folder: Path) -> torch.nn.Module:
        return self.model_class().from_pretrained(
            str(folder), dtype=torch.float32, ignore_mismatched_sizes=self.cfg.ignore_mismatched_sizes, num_labels=1)

    def pack(self, split: Split | QueryGroups, index: list[int]) -> fd.Packed:
        """One sequence per pair; listwise, the pairs of each query one after another."""
        return pack_groups(split.ids, index) if self.listwise else super().pack(split, index)

    def outputs(self, logits: torch.Tensor, batch: fd.Packed) -> list[torch.Tensor]:
        """A score per pair; listwise, the scores (passages,) of each query."""
        scores = logits.float().cpu().reshape(-1)
        return list(scores.split(batch.group_sizes)) if self.listwise else list(scores)

    def count(self, labels: torch.Tensor) -> int:
        """Listwise, the loss is averaged over the queries with a relevant passage (the others have none)."""
        return int((labels.clamp(min=0).sum(-1) > 0).sum()) if self.listwise else int(labels.shape[0])

    def loss_sum(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """BCE over pairs; listwise, `labels` are (queries, most passages), -1 past a query's own passages."""
        if not self.listwise:
            return F.binary_cross_entropy_with_logits(logits.float().reshape(-1), labels, reduction="sum")
        valid = labels >= 0
        scores = torch.full(labels.shape, float("-inf"), device=logits.device)
        scores = scores.masked_scatter(valid, logits.float().reshape(-1))
        target = labels.clamp(min=0)
        target = target / target.sum(-1, keepdim=True).clamp(min=1e-12)
        return -(target * torch.log_softmax(scores, -1).masked_fill(~valid, 0.0)).sum()

    def metric_names(self) -> list[str]:
        ranking = ["eval_mrr@10", "eval_recall@1", "eval_recall@10"]
        return ["eval_loss", *ranking] if self.listwise else ["eval_loss", "eval_accuracy", *ranking]

    def evaluate(self, outputs: list[torch.Tensor], split: Split | QueryGroups) -> dict[str, float]:
        """The loss (BCE with accuracy at 0.5, or listwise) and the retrieval metrics of each query's passages
        ranked by score."""
        if self.listwise:
            loss = float(self.loss_sum(torch.cat(outputs), split.labels)) / max(1, self.count(split.labels))
            scores = _in_row_order(outputs, split)
            labels, members = split.row_labels, split.members
            head = {"loss": loss}
        else:
            scores, labels = torch.stack(outputs), split.labels
            members = _by_query(split.queries)  # type: ignore[attr-defined]
            head = {"loss": float(self.loss_sum(scores, labels)) / len(labels),
                    "accuracy": float(((scores > 0) == (labels > 0.5)).float().mean())}
        ranks = [[_rank_of(scores[m], j) for j, i in enumerate(m) if labels[i] > 0.5] for m in members]
        return {**head, **retrieval_metrics(ranks)}

    def predictions(self, outputs: list[torch.Tensor], split: Split | QueryGroups) -> list[dict[str, Any]]:
        """Per row of the file: the score the exported model gives it (the sigmoid of its logit)."""
        scores = _in_row_order(outputs, split) if self.listwise else torch.stack(outputs)
        return [{"index": i, "score": float(torch.sigmoid(o))} for i, o in enumerate(scores)]

    def describe(self) -> dict[str, Any]:
        kind = "listwise relevance, softmax over each query's passages" if self.listwise else "binary relevance"
        return {"columns": {"query": self.query, "passage": self.passage, "relevance": self.label_column},
                "problem_type": f"{kind} (cross-encoder)", "labels": []}


@dataclass
class QueryGroups:
    """A reranker split for the listwise loss: example q is query q (in order of first row) with its passages."""

    rows: fd.Rows
    ids: list[list[list[int]]]  # per query, the token ids of each of its (query, passage) pairs
    labels: torch.Tensor | None  # (queries, most passages): relevances, -1 past a query's passages
    members: list[list[int]]  # per query, the file rows of its pairs
    row_labels: torch.Tensor | None  # (rows,) the relevances in file order

    @classmethod
    def of(cls, rows: fd.Rows, queries: list[str], ids: list[list[int]], labels: torch.Tensor | None,
           ) -> QueryGroups:
        members = _by_query(queries)
        padded = None
        if labels is not None:
            padded = torch.full((len(members), max(map(len, members))), -1.0)
            for q, m in enumerate(members):
                padded[q, :len(m)] = labels[m]
        return cls(rows, [[ids[i] for i in m] for m in members], padded, members, labels)

    @property
    def lengths(self) -> list[int]:
        return [sum(len(x) for x in group) for group in self.ids]


def _by_query(queries: list[str]) -> list[list[int]]:
    """The row indices of each distinct query text, queries in order of their first row."""
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        groups.setdefault(q, []).append(i)
    return list(groups.values())


def _in_row_order(outputs: list[torch.Tensor], split: QueryGroups) -> torch.Tensor:
    """(rows,) the scores of a grouped split's outputs (passages,) per query, back in file order."""
    scores = torch.empty(sum(len(m) for m in split.members))
    for m, out in zip(split.members, outputs):
        scores[m] = out
    return scores


def pack_groups(ids: list[list[list[int]]], index: list[int]) -> fd.Packed:
    """The sequences of each example `index` of grouped `ids`, one example after another."""
    seqs = [seq for i in index for seq in ids[i]]
    packed = fd.pack(seqs, range(len(seqs)))
    return fd.Packed(torch.tensor(list(index)), packed.input_ids, packed.cu_seqlens, packed.max_seqlen,
                     [len(ids[i]) for i in index])
