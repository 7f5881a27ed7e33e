"""Evaluation metrics of fine-tuning, named as transformers' Trainer names them once `eval_` is prefixed.

- `classification_metrics`: accuracy, macro-F1 and the (multi-class) Matthews correlation, as scikit-learn's
  `accuracy_score`, `f1_score(average="macro")` and `matthews_corrcoef` compute them;
- `multilabel_metrics`: exact-match accuracy, macro- and micro-F1 over the labels;
- `regression_metrics`: Pearson and Spearman correlation (ties get their average rank, as in SciPy) and the
  mean squared error;
- `entity_metrics`: entity-level precision, recall and F1 with word-level accuracy, as seqeval's default
  (conlleval) mode computes them for run_ner.py.
"""

from __future__ import annotations

import numpy as np


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Per-class F1 = 2 tp / (2 tp + fp + fn); 0 where a class is neither predicted nor present."""
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros(tp.shape, dtype=np.float64), where=denom > 0)


def matthews_corrcoef(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """The multi-class Matthews correlation coefficient (Gorodkin's R_K); 0 when it is undefined."""
    c = np.zeros((num_classes, num_classes), dtype=np.float64)
    np.add.at(c, (y_true, y_pred), 1)
    t, p = c.sum(1), c.sum(0)  # true and predicted counts per class
    n, correct = c.sum(), np.trace(c)
    cov = correct * n - t @ p
    denom = np.sqrt((n * n - p @ p) * (n * n - t @ t))
    return float(cov / denom) if denom > 0 else 0.0


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, float]:
    """`accuracy`, `f1` (macro over the classes present in either) and `matthews_correlation`."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    present = np.union1d(y_true, y_pred)
    tp = np.array([np.sum((y_pred == k) & (y_true == k)) for k in present], dtype=np.float64)
    fp = np.array([np.sum((y_pred == k) & (y_true != k)) for k in present], dtype=np.float64)
    fn = np.array([np.sum((y_pred != k) & (y_true == k)) for k in present], dtype=np.float64)
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "f1": float(np.mean(_f1(tp, fp, fn))),
        "matthews_correlation": matthews_corrcoef(y_true, y_pred, num_classes),
    }


def multilabel_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """`accuracy` (every label of a row right), `f1` (macro over the labels) and `f1_micro`, on 0/1 matrices
    (rows, labels)."""
    y_true, y_pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    tp = (y_true & y_pred).sum(0).astype(np.float64)
    fp = (~y_true & y_pred).sum(0).astype(np.float64)
    fn = (y_true & ~y_pred).sum(0).astype(np.float64)
    return {
        "accuracy": float(np.mean(np.all(y_true == y_pred, axis=1))),
        "f1": float(np.mean(_f1(tp, fp, fn))),
        "f1_micro": float(_f1(tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True))[0]),
    }


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.zeros(len(counts))
    np.add.at(sums, inverse, ranks)
    return (sums / counts)[inverse]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r; NaN when either side is constant (as SciPy returns it)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / denom) if denom > 0 else float("nan")


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """`pearson`, `spearmanr` and `mse`."""
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    return {
        "pearson": pearson(y_true, y_pred),
        "spearmanr": pearson(_ranks(y_true), _ranks(y_pred)),
        "mse": float(np.mean((y_true - y_pred) ** 2)),
    }


# ----- entities (NER) -----


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    return (prev_tag in ("E", "S") or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
            or (prev_tag not in ("O", ".") and prev_type != type_))


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    return (tag in ("B", "S") or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
            or (tag not in ("O", ".") and prev_type != type_))


def entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """The (type, first, last) entities of a tag sequence (IOB1, IOB2, IOBES), as conlleval and seqeval's
    default mode read them: an `I-X` after `O` or another type starts an entity."""
    chunks, prev_tag, prev_type, begin = [], "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag = chunk[0] if chunk else "O"
        type_ = chunk[1:].split("-", maxsplit=1)[-1] or "_"
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def entity_metrics(y_true: list[list[str]], y_pred: list[list[str]]) -> dict[str, float]:
    """Entity-level `precision`, `recall` and `f1` (micro over entities, an entity right when its type and
    span are) and word-level `accuracy`, as seqeval computes them for run_ner.py."""
    true_set, pred_set, correct_words, words = set(), set(), 0, 0
    for n, (t, p) in enumerate(zip(y_true, y_pred)):
        if len(t) != len(p):
            raise ValueError(f"sequence {n}: {len(t)} true tags but {len(p)} predicted ones")
        true_set.update((n, *e) for e in entities(t))
        pred_set.update((n, *e) for e in entities(p))
        correct_words += sum(a == b for a, b in zip(t, p))
        words += len(t)
    hits = len(true_set & pred_set)
    precision = hits / len(pred_set) if pred_set else 0.0
    recall = hits / len(true_set) if true_set else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "accuracy": correct_words / max(1, words)}
