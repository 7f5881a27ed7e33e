"""MLM pretraining: masking, packing, schedule, loss goes down, exact resume, determinism, torchrun, errors."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from modernbert.training import PretrainConfig, build_arg_parser, config_from_args, pretrain, unigram_baseline
from modernbert.training.data import (
    IGNORE_INDEX,
    PackedBatchStream,
    SpecialIds,
    load_tokenizer,
    make_chunks,
    mask_tokens,
    tokenize_corpus,
)
from modernbert.training.pretrain import list_checkpoints, wsd_factor

REPO = Path(__file__).resolve().parents[2]
pretrain_module = importlib.import_module("modernbert.training.pretrain")  # the package's `pretrain` is the function


def _weights(folder: str) -> dict[str, torch.Tensor]:
    return load_file(str(Path(folder) / "model.safetensors"))


def _special(tiny_data) -> SpecialIds:
    return SpecialIds.from_tokenizer(load_tokenizer(tiny_data["tokenizer"]))


# ----- data -----


def test_masking_rates_and_specials(tiny_data):
    special = _special(tiny_data)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(special.num_regular, (20000,), generator=g)
    ids[::10] = special.cls
    ids[5::10] = special.sep
    out, labels = mask_tokens(ids, special, 0.3, g)
    selected = labels != IGNORE_INDEX
    assert not selected[ids >= special.num_regular].any()  # specials never selected
    assert (out[ids >= special.num_regular] == ids[ids >= special.num_regular]).all()
    rate = selected[ids < special.num_regular].float().mean().item()
    assert 0.28 < rate < 0.32
    assert (labels[selected] == ids[selected]).all()
    shown_mask = (out[selected] == special.mask).float().mean().item()
    kept = (out[selected] == ids[selected]).float().mean().item()
    assert 0.77 < shown_mask < 0.83 and 0.08 < kept < 0.12
    assert (out[~selected] == ids[~selected]).all()
    assert out.max() < special.vocab_size


def test_packing_has_no_padding_and_shards_by_rank(tiny_data, tmp_path):
    special = _special(tiny_data)
    corpus = tokenize_corpus(tiny_data["train"], tiny_data["tokenizer"], tmp_path)
    chunks = make_chunks(corpus, 32)
    assert (chunks[:, 1] - chunks[:, 0] <= 30).all()
    assert (chunks[:, 1] - chunks[:, 0]).sum() == corpus.num_tokens  # nothing dropped
    streams = [PackedBatchStream(corpus, chunks, special, 128, seed=3, rank=r, world_size=2) for r in (0, 1)]
    seen = []
    for s in streams:
        for _ in range(s.steps_per_epoch()):
            b = s.next()
            cu = b.cu_seqlens.tolist()
            assert cu[0] == 0 and cu[-1] == b.num_tokens <= 128
            assert b.max_seqlen == max(np.diff(cu)) <= 32
            assert (b.input_ids[b.cu_seqlens[:-1].long()] == special.cls).all()
            assert (b.input_ids[b.cu_seqlens[1:].long() - 1] == special.sep).all()
            assert not (b.input_ids == special.pad).any()
            seen.append(b.input_ids[b.input_ids < special.num_regular])
    # Both ranks together see (almost) the whole epoch, each token once: no overlap between ranks.
    total = sum(len(t) for t in seen)
    assert corpus.num_tokens - 4 * 128 <= total <= corpus.num_tokens


def _take(stream, steps: int) -> list[int]:
    """The chunk indices of this rank's next `steps` batches."""
    out = []
    for _ in range(steps):
        stream.steps_per_epoch()  # plans the epoch
        if stream.index >= stream.steps_per_epoch():
            break
        b = stream.index * stream.world_size + stream.rank
        out += stream._order[stream._bounds[b]:stream._bounds[b + 1]].tolist()
        stream.next()
    return out


def test_stream_position_resumes_on_another_world_size(tiny_data, tmp_path):
    """Two ranks take 3 steps, then one process resumes from their position with twice the capacity: every
    chunk of the epoch is taken at most once, in the epoch's order, and only the packing's tail is left."""
    special = _special(tiny_data)
    corpus = tokenize_corpus(tiny_data["train"], tiny_data["tokenizer"], tmp_path)
    chunks = make_chunks(corpus, 32)
    pair = [PackedBatchStream(corpus, chunks, special, 128, seed=5, rank=r, world_size=2) for r in (0, 1)]
    first = [_take(s, 3) for s in pair]
    state = pair[0].state_dict()
    assert state == pair[1].state_dict() and state["epoch"] == 0
    assert sorted(first[0] + first[1]) == sorted(pair[0]._order[: state["offset"]].tolist())
    one = PackedBatchStream(corpus, chunks, special, 256, seed=5)
    one.load_state_dict(state)
    rest = _take(one, 10_000)
    assert rest == one._order[state["offset"]: state["offset"] + len(rest)].tolist()
    taken = first[0] + first[1] + rest
    assert len(taken) == len(set(taken))
    left = chunks[one._order[len(taken):]]
    assert int((left[:, 1] - left[:, 0] + 2).sum()) <= 256  # at most the last, partial batch
    # and back: the single process's position resumes on two ranks where it stopped
    one2 = PackedBatchStream(corpus, chunks, special, 256, seed=5)
    _take(one2, 2)
    pair2 = [PackedBatchStream(corpus, chunks, special, 128, seed=5, rank=r, world_size=2) for r in (0, 1)]
    for s in pair2:
        s.load_state_dict(one2.state_dict())
    nxt = _take(pair2[0], 1) + _take(pair2[1], 1)
    assert sorted(nxt) == sorted(one2._order[one2.state_dict()["offset"]:][: len(nxt)].tolist())


def test_wsd_schedule():
    cfg = SimpleNamespace(steps=100, warmup_frac=0.1, decay_frac=0.2, decay_shape="linear", min_lr_ratio=0.0)
    f = [wsd_factor(s, cfg) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0
    assert all(x == 1.0 for x in f[10:80])
    assert f[80] < 1.0 and f[99] == pytest.approx(0.0)
    assert all(a >= b for a, b in zip(f[80:], f[81:]))


# ----- training -----


def test_loss_decreases_and_exports(tiny_cfg):
    m = pretrain(tiny_cfg(steps=40, eval_every=40, save_every=0, lr=5e-3))
    losses = m["train_losses"]
    assert len(losses) == 40 and m["completed"]
    assert np.mean(losses[-5:]) < losses[0] - 1.0
    assert m["eval"]["loss"] < losses[0] - 1.0
    assert 0.0 < m["eval"]["accuracy"] <= 1.0 and 0.0 < m["unigram"]["accuracy"] < 1.0
    assert m["tokens_seen"] > 0 and m["elapsed_s"] > 0
    final = Path(m["final_dir"])
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json"):
        assert (final / name).is_file(), name
    from modernbert.model import ModernBertForMaskedLM

    model = ModernBertForMaskedLM.from_pretrained(str(final))
    assert model.config.sparse_prediction is False
    assert json.loads((final / "tokenizer_config.json").read_text())["model_max_length"] == 64


def test_unigram_baseline_function(tiny_cfg):
    cfg = tiny_cfg()
    base = unigram_baseline(cfg)
    assert 0.0 < base["accuracy"] < 1.0 and isinstance(base["token"], str)
    m = pretrain(cfg.__class__(**{**cfg.__dict__, "steps": 1, "eval_every": 1}))
    assert m["unigram"]["accuracy"] == base["accuracy"]  # same held-out positions


def test_interrupted_run_resumes_exactly(tiny_cfg):
    full = pretrain(tiny_cfg("full", steps=10, save_every=3))
    first = pretrain(tiny_cfg("split", steps=10, save_every=3, stop_after=4))
    assert first["step"] == 4 and not first["completed"] and first["final_dir"] is None
    assert list_checkpoints(tiny_cfg("split").out_dir)[-1].name == "step-00000004.pt"
    with pytest.raises(ValueError, match="already holds checkpoints"):
        pretrain(tiny_cfg("split", steps=10))
    resumed = pretrain(tiny_cfg("split", steps=10, save_every=3, resume=True))
    assert resumed["step"] == 10 and resumed["completed"]
    assert resumed["train_losses"] == full["train_losses"]
    assert resumed["eval"]["loss"] == full["eval"]["loss"]
    assert resumed["tokens_seen"] == full["tokens_seen"]
    a, b = _weights(full["final_dir"]), _weights(resumed["final_dir"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_crash_between_checkpoints_resumes_exactly(tiny_cfg, monkeypatch):
    """A run that dies at step 7 (last checkpoint at 5) resumes from 5 and ends like an uninterrupted run."""
    full = pretrain(tiny_cfg("full", steps=9))
    calls = {"n": 0}
    real = pretrain_module.mask_tokens

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt("simulated kill")
        return real(*args, **kwargs)

    monkeypatch.setattr(pretrain_module, "mask_tokens", dying)
    with pytest.raises(KeyboardInterrupt):
        pretrain(tiny_cfg("crash", steps=9))
    monkeypatch.setattr(pretrain_module, "mask_tokens", real)
    out = Path(tiny_cfg("crash").out_dir)
    assert list_checkpoints(out)[-1].name == "step-00000005.pt"
    (out / "checkpoints" / ".step-00000010.pt.tmp123").write_bytes(b"partial")  # torn write: ignored
    resumed = pretrain(tiny_cfg("crash", steps=9, resume=True))
    assert resumed["train_losses"] == full["train_losses"]
    a, b = _weights(full["final_dir"]), _weights(resumed["final_dir"])
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps_logged = [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()
                    if json.loads(x)["event"] == "train"]
    assert steps_logged == list(range(1, 10))  # records of the lost steps 6-7 were dropped


def test_deterministic_given_seed(tiny_cfg):
    a = pretrain(tiny_cfg("a", steps=4, save_every=0))
    b = pretrain(tiny_cfg("b", steps=4, save_every=0))
    c = pretrain(tiny_cfg("c", steps=4, save_every=0, seed=1))
    assert a["train_losses"] == b["train_losses"]
    assert a["train_losses"] != c["train_losses"]
    wa, wb = _weights(a["final_dir"]), _weights(b["final_dir"])
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_bf16_autocast_trains(tiny_cfg):
    m = pretrain(tiny_cfg(steps=20, bf16=True, save_every=0, eval_every=20, lr=5e-3))
    assert np.isfinite(m["train_losses"]).all()
    assert np.mean(m["train_losses"][-3:]) < m["train_losses"][0] - 0.5


def test_resume_refuses_changed_options(tiny_cfg):
    pretrain(tiny_cfg("r", steps=4, stop_after=2))
    with pytest.raises(ValueError, match="seq_len"):
        pretrain(tiny_cfg("r", steps=4, seq_len=16, resume=True))


def test_torchrun_two_processes(tiny_cfg):
    cfg = tiny_cfg("ddp", steps=6, save_every=3, eval_every=3)
    args = ["--" + k.replace("_", "-") + "=" + str(v) for k, v in cfg.__dict__.items()
            if v is not None and not isinstance(v, bool)]
    args += ["--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "modernbert.training", *args],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((Path(cfg.out_dir) / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["step"] == 6 and metrics["completed"]
    assert np.isfinite(metrics["train_losses"]).all()
    assert (Path(cfg.out_dir) / "final" / "model.safetensors").is_file()
    assert [p.name for p in list_checkpoints(cfg.out_dir)] == ["step-00000003.pt", "step-00000006.pt"]
    # the checkpoint of two processes resumes on one, which continues from the same data position
    state = torch.load(list_checkpoints(cfg.out_dir)[-1], map_location="cpu", weights_only=False)
    resumed = pretrain(dataclasses.replace(cfg, steps=9, resume=True, quiet=True))
    assert resumed["world_size"] == 1 and resumed["step"] == 9 and resumed["completed"]
    assert resumed["train_losses"][:6] == metrics["train_losses"]
    after = torch.load(list_checkpoints(cfg.out_dir)[-1], map_location="cpu", weights_only=False)
    assert after["stream"]["epoch"] * 10**6 + after["stream"]["offset"] > \
        state["stream"]["epoch"] * 10**6 + state["stream"]["offset"]


# ----- options -----


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(num_heads=3), "divisible"),
        (dict(seq_len=128), "max_position_embeddings"),
        (dict(batch_tokens=16), "batch_tokens"),
        (dict(mask_prob=1.5), "mask_prob"),
        (dict(lr=0.0), "lr"),
        (dict(warmup_frac=0.6, decay_frac=0.6), "at most 1"),
        (dict(warmup_frac=0.1, stable_frac=0.5, decay_frac=0.1), "must equal 1"),
        (dict(steps=0), "steps"),
        (dict(train_data="/nonexistent.jsonl"), "does not exist"),
        (dict(tokenizer="/nonexistent"), "tokenizer.json"),
        (dict(decay_shape="cosine"), "decay_shape"),
        (dict(local_attention=7), "even"),
        (dict(stop_after=0), "stop_after"),
    ],
)
def test_bad_options_raise_value_error(tiny_cfg, overrides, message):
    with pytest.raises(ValueError, match=message):
        pretrain(tiny_cfg(**overrides))


def test_command_line_parser(tiny_data, tmp_path, capsys):
    args = build_arg_parser().parse_args(
        ["--train-data", tiny_data["train"], "--heldout-data", "none", "--steps", "3", "--bf16",
         "--grad-clip", "none", "--decay-shape", "linear", "--out-dir", str(tmp_path / "cli")]
    )
    cfg = config_from_args(args)
    assert cfg.heldout_data is None and cfg.steps == 3 and cfg.bf16 is True and cfg.grad_clip is None
    assert cfg.decay_shape == "linear" and cfg.out_dir == str(tmp_path / "cli")
    rc = pretrain_module.main(["--train-data", tiny_data["train"], "--heldout-data", "none",
                               "--tokenizer", "/nonexistent", "--out-dir", str(tmp_path / "x")])
    assert rc == 2 and "tokenizer.json" in capsys.readouterr().err


def test_help_has_one_line_of_text_and_one_default_per_flag():
    import re

    parser = build_arg_parser(prog="modernbert pretrain")
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert len(options) == len(dataclasses.fields(PretrainConfig))
    for action in options:
        assert action.help and action.help.split(" (default")[0] != action.dest.replace("_", " "), action.dest
    text = " ".join(parser.format_help().split())
    blocks = re.split(r" (?=--[a-z][a-z0-9-]+(?: [A-Z]+|,| \{| --))", text.split("options:", 1)[1])
    per_flag = {b.split()[0].rstrip(","): len(re.findall(r"\(default", b)) for b in blocks if b.startswith("--")}
    assert len(per_flag) == len(options)
    assert all(n == 1 for n in per_flag.values()), {k: n for k, n in per_flag.items() if n != 1}
    assert "--lr X peak learning rate of the warmup-stable-decay schedule (default: 0.002)" in text
    assert "--bf16, --no-bf16 bf16 autocast, on CPU or CUDA (default: off)" in text
