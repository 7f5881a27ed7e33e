"""Data for MLM pretraining: tokenised corpora, sequence packing and masking.

* A corpus (``.jsonl`` with a ``"text"`` field per line, or plain text with one document per line) is
  tokenised once without special tokens into one flat ``int32`` array plus document offsets, and cached
  as ``.npz`` keyed by the hashes of the corpus and of ``tokenizer.json``.
* Every document is cut into chunks of at most ``seq_len - 2`` tokens; each chunk becomes one sequence
  ``[CLS] chunk [SEP]``.
* Each epoch shuffles the chunks with a generator seeded by ``(seed, epoch)`` and packs them greedily, in
  that order, into batches of at most ``capacity`` tokens: a packed batch is the concatenation of its
  sequences plus ``cu_seqlens``; there are no padding tokens.  Rank ``r`` of ``world`` takes packed
  batches ``r, r + world, r + 2 world, ...``, so the data a step sees depends only on the seed, the epoch
  and the step, never on earlier interruptions.
* MLM masking: each non-special token is selected with probability ``mask_prob``; a selected token becomes
  ``[MASK]`` (80%), a random ordinary token (10%) or stays (10%); labels are -100 elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .. import hub
from .runinputs import file_sha256

IGNORE_INDEX = -100


@dataclass(frozen=True)
class SpecialIds:
    """Ids of the special tokens; every id ``>= num_regular`` is special and is never masked."""

    cls: int
    sep: int
    pad: int
    mask: int
    unk: int
    num_regular: int  # ordinary (BPE) tokens are 0 .. num_regular - 1
    vocab_size: int  # tokenizer size including added tokens

    @classmethod
    def from_tokenizer(cls, tokenizer) -> SpecialIds:
        """Read the ids from a ``tokenizers.Tokenizer`` in ModernBERT's layout (specials at the end)."""
        ids = {}
        for name in ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"):
            i = tokenizer.token_to_id(name)
            if i is None:
                raise ValueError(f"the tokenizer has no {name} token; train it with scripts/train_tokenizer.py")
            ids[name] = i
        vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        num_regular = min(ids.values())
        if sorted(ids.values()) != list(range(num_regular, num_regular + 5)) or num_regular + 5 != vocab_size:
            raise ValueError(
                f"special tokens must be the last 5 ids of the vocabulary (ModernBERT layout), got {ids} "
                f"with vocabulary size {vocab_size}"
            )
        return cls(
            cls=ids["[CLS]"], sep=ids["[SEP]"], pad=ids["[PAD]"], mask=ids["[MASK]"], unk=ids["[UNK]"],
            num_regular=num_regular, vocab_size=vocab_size,
        )


def load_tokenizer(folder: str | os.PathLike):
    """Load ``tokenizer.json`` from a tokenizer folder (as written by ``scripts/train_tokenizer.py``)."""
    from tokenizers import Tokenizer

    path = Path(folder) / hub.TOKENIZER_FILE
    if not path.is_file():
        raise ValueError(f"tokenizer folder {folder} has no {hub.TOKENIZER_FILE}")
    return Tokenizer.from_file(str(path))


def read_documents(path: str | os.PathLike) -> list[str]:
    """Documents of a ``.jsonl`` file (field ``"text"``) or of a text file (one per non-empty line)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data file {path} does not exist")
    docs: list[str] = []
    try:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                if path.suffix == ".jsonl":
                    try:
                        text = json.loads(line)["text"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise ValueError(f"{path}:{n} is not a JSON object with a 'text' field") from None
                else:
                    text = line.rstrip("\n")
                if text.strip():
                    docs.append(text)
    except UnicodeDecodeError:
        raise ValueError(_decode_error(path)) from None
    if not docs:
        raise ValueError(f"data file {path} holds no documents")
    return docs


def _decode_error(path: Path) -> str:
    """Where the first invalid UTF-8 of a file is: line, column and byte."""
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                return (
                    f"{path}:{n}: not valid UTF-8 (byte 0x{line[e.start]:02x} at column {e.start + 1}); "
                    "the corpus must be UTF-8 text: convert the file (e.g. iconv -f latin1 -t utf-8) or fix the line"
                )
    return f"{path} is not valid UTF-8 text"


@dataclass
class TokenizedCorpus:
    """All documents' token ids (no special tokens) in one flat array with ``offsets[i]:offsets[i+1]``."""

    tokens: np.ndarray  # (total,) int32
    offsets: np.ndarray  # (docs + 1,) int64

    @property
    def num_docs(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_tokens(self) -> int:
        return int(self.offsets[-1])


def cache_path(data: str | os.PathLike, tokenizer_dir: str | os.PathLike, cache_dir: str | os.PathLike) -> Path:
    """Where ``tokenize_corpus`` caches the tokens of ``data`` under ``tokenizer_dir``."""
    key = hashlib.sha256(
        (file_sha256(data) + file_sha256(Path(tokenizer_dir) / hub.TOKENIZER_FILE)).encode()
    ).hexdigest()[:16]
    return Path(cache_dir) / f"{Path(data).stem}-{key}.npz"


def tokenize_corpus(
    data: str | os.PathLike, tokenizer_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None
) -> TokenizedCorpus:
    """Tokenise every document of ``data`` (no special tokens), using and filling the cache if given."""
    cached = cache_path(data, tokenizer_dir, cache_dir) if cache_dir is not None else None
    if cached is not None and cached.is_file():
        with np.load(cached) as z:
            return TokenizedCorpus(tokens=z["tokens"], offsets=z["offsets"])
    tokenizer = load_tokenizer(tokenizer_dir)
    docs = read_documents(data)
    lengths = np.zeros(len(docs) + 1, dtype=np.int64)
    parts: list[np.ndarray] = []
    step = 4096
    for start in range(0, len(docs), step):
        for i, enc in enumerate(tokenizer.encode_batch(docs[start : start + step], add_special_tokens=False)):
            parts.append(np.asarray(enc.ids, dtype=np.int32))
            lengths[start + i + 1] = len(enc.ids)
    corpus = TokenizedCorpus(
        tokens=np.concatenate(parts) if parts else np.zeros(0, np.int32), offsets=np.cumsum(lengths)
    )
    if cached is not None:
        with hub.atomic_write(cached) as f:
            np.savez(f, tokens=corpus.tokens, offsets=corpus.offsets)
    return corpus


def make_chunks(corpus: TokenizedCorpus, seq_len: int) -> np.ndarray:
    """(chunks, 2) ``[start, end)`` spans into ``corpus.tokens``: documents cut at ``seq_len - 2`` tokens."""
    body = seq_len - 2
    if body < 1:
        raise ValueError(f"seq_len={seq_len} must be at least 3 ([CLS] token [SEP])")
    starts, ends = [], []
    for d in range(corpus.num_docs):
        a, b = int(corpus.offsets[d]), int(corpus.offsets[d + 1])
        s = np.arange(a, b, body)
        starts.append(s)
        ends.append(np.minimum(s + body, b))
    if not starts:
        return np.zeros((0, 2), np.int64)
    return np.stack([np.concatenate(starts), np.concatenate(ends)], axis=1).astype(np.int64)


def pack_order(lengths: np.ndarray, capacity: int) -> np.ndarray:
    """Greedy packing of sequences (in the given order) into batches of at most ``capacity`` tokens.

    ``lengths`` are the sequence lengths including [CLS]/[SEP]. Returns the batch boundaries: batch ``i``
    holds sequences ``bounds[i]:bounds[i+1]``.
    """
    bounds = [0]
    used = 0
    for i, n in enumerate(lengths.tolist()):
        if used + n > capacity and used > 0:
            bounds.append(i)
            used = 0
        used += n
    if used:
        bounds.append(len(lengths))
    return np.asarray(bounds, dtype=np.int64)


@dataclass
class PackedBatch:
    """Packed sequences: ``input_ids`` (tokens,), ``cu_seqlens`` (seqs + 1,) int32, longest sequence.

    The forward's inputs as the data stream yields them, before masking; the model builds its own AttnBatch
    (host lengths, per-forward caches) from ``cu_seqlens``."""

    input_ids: Tensor
    cu_seqlens: Tensor
    max_seqlen: int

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.shape[0])


def build_packed(corpus: TokenizedCorpus, spans: np.ndarray, special: SpecialIds) -> PackedBatch:
    """Concatenate ``[CLS] tokens[start:end] [SEP]`` for every span, longest first.

    Sequences are ordered by decreasing length (stable) so that equal lengths are adjacent: attention
    handles runs of equal-length sequences in one call.
    """
    spans = spans[np.argsort(spans[:, 0] - spans[:, 1], kind="stable")]
    pieces: list[np.ndarray] = []
    lens = []
    cls_ = np.asarray([special.cls], np.int32)
    sep_ = np.asarray([special.sep], np.int32)
    for a, b in spans.tolist():
        pieces += [cls_, corpus.tokens[a:b], sep_]
        lens.append(b - a + 2)
    ids = torch.from_numpy(np.concatenate(pieces).astype(np.int64))
    cu = torch.zeros(len(lens) + 1, dtype=torch.int32)
    cu[1:] = torch.cumsum(torch.tensor(lens, dtype=torch.int32), 0)
    return PackedBatch(input_ids=ids, cu_seqlens=cu, max_seqlen=max(lens))


def mask_tokens(
    input_ids: Tensor, special: SpecialIds, mask_prob: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """MLM corruption: returns ``(corrupted_ids, labels)``; special tokens are never selected.

    Selected tokens (probability ``mask_prob`` each): 80% ``[MASK]``, 10% a random ordinary token, 10%
    unchanged; their labels are the original ids, every other label is -100. At least one token is selected
    whenever the batch has an ordinary token, so the loss is always defined.
    """
    candidates = input_ids < special.num_regular
    u = torch.rand(input_ids.shape, generator=generator)
    selected = candidates & (u < mask_prob)
    if not bool(selected.any()) and bool(candidates.any()):
        idx = candidates.nonzero().squeeze(1)
        pick = idx[torch.randint(len(idx), (1,), generator=generator)]
        selected[pick] = True
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    r = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(special.num_regular, input_ids.shape, generator=generator, dtype=input_ids.dtype)
    out = input_ids.clone()
    out = torch.where(selected & (r < 0.8), torch.full_like(out, special.mask), out)
    out = torch.where(selected & (r >= 0.8) & (r < 0.9), random_ids, out)
    return out, labels


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The masking generator of one training step on one rank (independent of interruptions)."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + step) * 1009 + rank)
    return g


class PackedBatchStream:
    """Endless, deterministic, rank-sharded stream of packed batches over the chunks of a corpus.

    Every epoch shuffles the chunks with ``(seed, epoch)``; consecutive chunks are packed greedily into
    batches of ``capacity`` tokens, and global step ``k`` gives rank ``r`` batch ``k * world_size + r``. The
    position is ``(epoch, offset)``: the next global step starts at the ``offset``-th chunk of the epoch's order.
    It does not depend on the world size, so ``state_dict()`` saved on one world size resumes on another:
    packing restarts at the offset with this stream's capacity, and no chunk is skipped or repeated.
    """

    def __init__(
        self,
        corpus: TokenizedCorpus,
        chunks: np.ndarray,
        special: SpecialIds,
        capacity: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(chunks) == 0:
            raise ValueError("the training data holds no tokens")
        self.corpus, self.chunks, self.special = corpus, chunks, special
        self.capacity, self.seed, self.rank, self.world_size = capacity, seed, rank, world_size
        self.epoch, self.start, self.index = 0, 0, 0  # this rank's index-th step after chunk `start` of `epoch`
        self._plan_key: tuple[int, int] | None = None
        self._order = np.zeros(0, np.int64)
        self._bounds = np.zeros(1, np.int64)
        total = int((chunks[:, 1] - chunks[:, 0]).sum()) + 2 * len(chunks)  # [CLS] and [SEP] of each
        if total < capacity * world_size:
            most = total // world_size * world_size
            raise ValueError(
                f"the training data is too small for one batch: {total} tokens in {len(chunks)} sequence(s) "
                f"([CLS]/[SEP] included), and one step takes {capacity} tokens on each of {world_size} rank(s) "
                f"= {capacity * world_size}; use more data"
                + (f", or at most {most} tokens per step (batch_tokens, with seq_len no larger)" if most > 0 else "")
            )

    def _plan(self) -> None:
        if self._plan_key == (self.epoch, self.start):
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        self._order = rng.permutation(len(self.chunks))
        rest = self.chunks[self._order[self.start:]]
        lengths = rest[:, 1] - rest[:, 0] + 2
        self._bounds = pack_order(lengths, self.capacity) + self.start
        self._plan_key = (self.epoch, self.start)

    def steps_per_epoch(self) -> int:
        """Steps left in the current epoch, counted from where its packing started (epochs differ slightly:
        packing depends on the order)."""
        self._plan()
        return (len(self._bounds) - 1) // self.world_size

    def next(self) -> PackedBatch:
        """The next packed batch of this rank; advances the position."""
        while self.index >= self.steps_per_epoch():
            self.epoch, self.start, self.index = self.epoch + 1, 0, 0
        b = self.index * self.world_size + self.rank
        spans = self.chunks[self._order[self._bounds[b] : self._bounds[b + 1]]]
        self.index += 1
        return build_packed(self.corpus, spans, self.special)

    def state_dict(self) -> dict[str, int]:
        """The position: the epoch and the first chunk of the next global step."""
        self._plan()
        return {"epoch": self.epoch, "offset": int(self._bounds[self.index * self.world_size])}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if "offset" in state:
            self.epoch, self.start, self.index = int(state["epoch"]), int(state["offset"]), 0
        else:  # the position of earlier checkpoints, (epoch, index): valid on their own world size only
            self.epoch, self.start, self.index = int(state["epoch"]), 0, int(state["index"])


@dataclass
class EvalBatch:
    """A fixed, already masked held-out batch."""

    input_ids: Tensor
    cu_seqlens: Tensor
    max_seqlen: int
    labels: Tensor
    mask_shown: Tensor  # (tokens,) bool: selected positions that show [MASK]


def build_eval_batches(
    corpus: TokenizedCorpus,
    seq_len: int,
    capacity: int,
    special: SpecialIds,
    mask_prob: float,
    seed: int,
    max_tokens: int | None = None,
) -> list[EvalBatch]:
    """The held-out set: chunks in file order, packed, masked once with a generator seeded by ``seed``.

    With ``max_tokens``, an evenly spaced subset of the chunks holding about that many tokens.
    """
    chunks = make_chunks(corpus, seq_len)
    total = int((chunks[:, 1] - chunks[:, 0] + 2).sum())
    if max_tokens is not None and total > max_tokens:
        # An evenly spaced subset of the chunks, so every part of the file (every source) is represented.
        keep = max(1, round(len(chunks) * max_tokens / total))
        chunks = chunks[np.unique((np.arange(keep) * len(chunks)) // keep)]
    lengths = chunks[:, 1] - chunks[:, 0] + 2
    bounds = pack_order(lengths, capacity)
    g = torch.Generator()
    g.manual_seed(seed)
    out = []
    for i in range(len(bounds) - 1):
        pb = build_packed(corpus, chunks[bounds[i] : bounds[i + 1]], special)
        ids, labels = mask_tokens(pb.input_ids, special, mask_prob, g)
        out.append(
            EvalBatch(
                input_ids=ids, cu_seqlens=pb.cu_seqlens, max_seqlen=pb.max_seqlen, labels=labels,
                mask_shown=(labels != IGNORE_INDEX) & (ids == special.mask),
            )
        )
    return out


def token_counts(corpus: TokenizedCorpus, vocab_size: int) -> np.ndarray:
    """(vocab_size,) frequency of every id in the corpus."""
    return np.bincount(corpus.tokens, minlength=vocab_size)
