"""Fault injection on pretraining: kill -9 anywhere, torn logs, damaged checkpoints, full disks, stale
temporaries, changed inputs on resume, bad corpora. Every faulted run, once resumed, must equal an
uninterrupted one: weights, optimizer state, metrics.json and log.jsonl, with every step logged once."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import shutil
import time
from pathlib import Path

import pytest
import torch
from fault_injection import (
    FullDisk,
    KillAt,
    assert_same_state,
    assert_steps_once,
    comparable_run,
    read_log,
    run_child,
    stale_temporary,
    tear_last_line,
    tmpfs,
    truncate,
    warm_up,
)
from safetensors.torch import load_file

from modernbert import hub
from modernbert.training import Checkpointer, pretrain
from modernbert.training.pretrain import list_checkpoints

STEPS = 8
PRETRAIN = "modernbert.training.pretrain:pretrain"


@pytest.fixture
def run_cfg(tiny_cfg):
    """Configs of the faulted runs and of their uninterrupted reference: 8 steps, a checkpoint every 2,
    an evaluation every 4, a record every step; always `resume=True`, as a user restarting a job does."""

    def make(name: str, **overrides):
        base = dict(steps=STEPS, save_every=2, eval_every=4, log_every=1, keep_checkpoints=2, resume=True)
        return tiny_cfg(name, **{**base, **overrides})

    return make


@pytest.fixture
def reference(run_cfg):
    """The uninterrupted run: its folder."""
    cfg = run_cfg("reference")
    pretrain(cfg)
    return Path(cfg.out_dir)


def _final_state(out_dir: Path) -> dict:
    return torch.load(Checkpointer(out_dir / "checkpoints").path(STEPS), weights_only=True)


def assert_same_as_reference(out_dir: Path, reference: Path) -> None:
    """Weights, optimizer, scheduler, data position, RNG, losses, the export, metrics.json and log.jsonl
    all equal."""
    assert_same_state(_final_state(out_dir), _final_state(reference))
    exported = [load_file(str(d / "final" / hub.SAFETENSORS_NAME)) for d in (out_dir, reference)]
    assert_same_state(*exported)
    run, ref = comparable_run(out_dir), comparable_run(reference)
    assert run["log"] == ref["log"]
    assert run["metrics"] == ref["metrics"]
    assert_steps_once(run["log"], STEPS)
    assert [r["step"] for r in run["log"] if r["event"] == "eval"] == [4, 8]
    leftovers = [p for p in out_dir.rglob(f"*{hub.TMP_SUFFIX}")]
    assert not leftovers, leftovers


# ----- kill -9 -----

KILLS = {
    "torn record before the first checkpoint": [KillAt("append", "log.jsonl", nth=2)],
    "during the first checkpoint's write": [KillAt("write", "step-*.pt", nth=1, after_bytes=3000)],
    "before a checkpoint's record is renamed": [KillAt("rename", "step-*.json", nth=2)],
    "between a checkpoint's record and its rename": [KillAt("rename", "step-*.pt", nth=2)],
    "while deleting the oldest checkpoint": [KillAt("unlink", "step-*.pt", nth=1)],
    "torn record after a checkpoint": [KillAt("append", "log.jsonl", nth=8)],
    "before metrics.json": [KillAt("rename", "metrics.json")],
    "twice: mid-checkpoint, then while the resume cuts the log back": [
        KillAt("write", "step-*.pt", nth=3, after_bytes=50_000), KillAt("rename", "log.jsonl", nth=1),
    ],
}


@pytest.mark.parametrize("kills", KILLS.values(), ids=KILLS.keys())
def test_kill_at_any_point_then_resume(run_cfg, reference, kills):
    cfg = run_cfg("killed")
    for kill in kills:  # each in its own process, resuming the one before
        assert run_child(PRETRAIN, cfg, kill_at=kill) == -9, f"the run was not killed at {kill}"
    pretrain(cfg)
    assert_same_as_reference(Path(cfg.out_dir), reference)


def test_kill_at_random_moments(run_cfg, reference):
    """kill -9 from outside after random delays, resuming each time, until the run completes."""
    warm_up()
    timed = run_cfg("timed")
    start = time.perf_counter()
    assert run_child(PRETRAIN, timed) == 0
    duration = time.perf_counter() - start
    assert_same_as_reference(Path(timed.out_dir), reference)  # a child process trains as this one does
    cfg = run_cfg("random")
    rng = random.Random(19)
    kills = 0
    for attempt in range(10):  # the first kill comes early enough to land even in a faster run
        code = run_child(PRETRAIN, cfg, kill_after=rng.uniform(0.1, 0.5 if attempt == 0 else 0.9) * duration)
        if code == 0:
            break
        assert code == -9
        kills += 1
    pretrain(cfg)  # completes the run (or finds it complete)
    assert kills >= 1
    assert_same_as_reference(Path(cfg.out_dir), reference)


# ----- torn logs, damaged checkpoints -----


def _killed_before_saving(cfg, step: int) -> None:
    """Run `cfg` in a child process killed as it starts writing the checkpoint of `step`."""
    assert run_child(PRETRAIN, cfg, kill_at=KillAt("write", f"step-{step:08d}.pt")) == -9


def test_torn_log_line_resumes(run_cfg, reference, caplog):
    cfg = run_cfg("torn")
    _killed_before_saving(cfg, 6)
    log = Path(cfg.out_dir) / "log.jsonl"
    tear_last_line(log)
    with caplog.at_level(logging.WARNING, logger="modernbert"):
        pretrain(cfg)
    assert any(str(log) in r.getMessage() and "torn" in r.getMessage() for r in caplog.records)
    assert_same_as_reference(Path(cfg.out_dir), reference)


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate_without_record(path: Path) -> None:
    Checkpointer.record_path(path).unlink()
    truncate(path)


DAMAGES = {
    "truncated": (truncate, "truncated"),
    "one byte changed": (_flip_a_byte, "SHA-256"),
    "truncated, no record": (_truncate_without_record, "does not load"),
}


@pytest.mark.parametrize(("damage", "reason"), DAMAGES.values(), ids=DAMAGES.keys())
def test_damaged_newest_checkpoint_falls_back(run_cfg, reference, caplog, damage, reason):
    cfg = run_cfg("damaged")
    _killed_before_saving(cfg, 8)
    newest = list_checkpoints(cfg.out_dir)[-1]
    assert newest.name == "step-00000006.pt"
    damage(newest)
    with caplog.at_level(logging.WARNING, logger="modernbert"):
        pretrain(cfg)
    warning = next(r.getMessage() for r in caplog.records if str(newest) in r.getMessage())
    assert reason in warning and "step-00000004.pt" in warning
    kept = newest.with_name(newest.name + ".damaged")
    assert kept.is_file() and str(kept) in warning  # set aside, never deleted
    assert_same_as_reference(Path(cfg.out_dir), reference)


def test_no_loadable_checkpoint_is_a_clear_error(run_cfg):
    cfg = run_cfg("all-damaged")
    pretrain(dataclasses.replace(cfg, stop_after=4))
    for path in list_checkpoints(cfg.out_dir):
        truncate(path)
    with pytest.raises(ValueError, match=r"no checkpoint in .* can be resumed from: step-00000004.pt: .*truncated"
                                         r".*step-00000002.pt: .*--out-dir"):
        pretrain(cfg)
    assert len(list_checkpoints(cfg.out_dir)) == 2  # nothing deleted or moved


# ----- full disks -----


def _checkpoint_size(reference: Path) -> int:
    return list_checkpoints(reference)[-1].stat().st_size


def _assert_intact_after_full_disk(out_dir: Path) -> None:
    """The checkpoints that exist verify, the log has no torn line, and no temporary file is left."""
    ckpt = Checkpointer(out_dir / "checkpoints")
    assert ckpt.checkpoints(), "the checkpoint before the full disk is gone"
    for path in ckpt.checkpoints():
        assert ckpt.problem(path) is None
        torch.load(path, weights_only=True)
    read_log(out_dir / "log.jsonl")
    assert not list(out_dir.rglob(f"*{hub.TMP_SUFFIX}"))


@pytest.mark.parametrize("where", ["checkpoints", "log.jsonl"])
def test_full_disk_is_named_and_resumable(run_cfg, reference, monkeypatch, where):
    """A disk that fills up while a checkpoint (or a log record) is written: a clear error, nothing
    corrupted, and the run resumes once space is freed."""
    cfg = run_cfg("full")
    out = Path(cfg.out_dir)
    free = int(_checkpoint_size(reference) * 1.5) if where == "checkpoints" else 2500
    disk = FullDisk(monkeypatch, out / where, free=free)
    with pytest.raises(hub.DiskFullError) as raised:
        pretrain(cfg)
    message = str(raised.value)
    assert "no space left on device" in message and str(out / where) in message
    if where == "checkpoints":
        assert "step-00000004.pt" in message and "needed" in message
    assert disk.refused == 1
    _assert_intact_after_full_disk(out)
    disk.free = 10**9  # space freed
    pretrain(cfg)
    assert_same_as_reference(out, reference)


def test_full_tmpfs_is_named_and_resumable(run_cfg, reference, tmp_path):
    """The same on a real, small filesystem (where this machine lets the tests mount one)."""
    size = _checkpoint_size(reference)
    with tmpfs(tmp_path / "disk", size=int(size * 1.6)) as disk:
        cfg = run_cfg(str(Path("disk") / "run"))
        out = Path(cfg.out_dir)
        with pytest.raises(hub.DiskFullError, match=r"no space left on device while writing .*checkpoints"):
            pretrain(cfg)
        _assert_intact_after_full_disk(out)
        disk.resize(size * 8)
        pretrain(cfg)
        assert_same_as_reference(out, reference)


# ----- temporary files -----


def test_stale_temporaries_removed_and_other_files_untouched(run_cfg):
    cfg = run_cfg("temps", steps=2, eval_every=0)
    out = Path(cfg.out_dir)
    ckpts = out / "checkpoints"
    stale = [
        stale_temporary(ckpts, "step-00000002.pt"),  # a killed save (its process is gone)
        stale_temporary(ckpts, "step-00000004.pt", pid=os.getpid(), age_s=25 * 3600),  # too old to be live
        stale_temporary(out, "log.jsonl"),
        stale_temporary(out, "metrics.json"),
    ]
    others = {
        stale_temporary(ckpts, "step-00000006.pt", pid=os.getpid()): None,  # a save in progress
        ckpts / "notes.txt": b"mine",
        ckpts / ".step-00000002.pt.tmp-x": b"not named as ours",
        ckpts / f".step-00000002.pt.{os.getpid()}{hub.TMP_SUFFIX}": b"no random part",
        out / f"data.{os.getpid()}.x{hub.TMP_SUFFIX}": b"no leading dot",
        out / "step-00000008.pt": b"not in checkpoints/",
    }
    for path, data in others.items():
        if data is not None:
            path.write_bytes(data)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in others}
    pretrain(cfg)
    assert not [p for p in stale if p.exists()]
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in others} == before
    assert [p.name for p in list_checkpoints(out)] == ["step-00000002.pt"]


# ----- inputs a resume must not change -----


def _swap_two_ids(tokenizer_dir: Path) -> None:
    """Same vocabulary size, two tokens' ids exchanged: the model would train on remapped ids."""
    path = tokenizer_dir / hub.TOKENIZER_FILE
    tok = json.loads(path.read_text(encoding="utf-8"))
    vocab = tok["model"]["vocab"]
    a, b = list(vocab)[10:12]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    path.write_text(json.dumps(tok), encoding="utf-8")


def _retrain(tokenizer_dir: Path) -> None:
    from conftest import load_script

    tt = load_script("train_tokenizer")
    shutil.rmtree(tokenizer_dir)
    tt.save_tokenizer(tt.train_tokenizer([tokenizer_dir.parent / "train.jsonl"], vocab_size=400), tokenizer_dir,
                      model_max_length=64)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("tokenizer ids", r"tokenizer\.tokenizer\.json"),
        ("tokenizer size", r"model_config\.vocab_size: 320 → 384.*tokenizer\.tokenizer\.json"),
        ("model config", r"model_config\.num_hidden_layers: 3 → 2"),
        ("train data", r"train_data\.sha256"),
        ("batch", r"options\.batch_tokens: 256 → 128"),
    ],
)
def test_changed_inputs_on_resume_are_a_clear_error(run_cfg, tiny_data, tmp_path, change, message):
    tok = tmp_path / "inputs" / "tokenizer"
    shutil.copytree(tiny_data["tokenizer"], tok)
    shutil.copyfile(tiny_data["train"], tmp_path / "inputs" / "train.jsonl")
    cfg = run_cfg("changed", tokenizer=str(tok), train_data=str(tmp_path / "inputs" / "train.jsonl"))
    pretrain(dataclasses.replace(cfg, stop_after=2))
    if change == "tokenizer ids":
        _swap_two_ids(tok)
    elif change == "tokenizer size":
        _retrain(tok)
    elif change == "model config":
        cfg = dataclasses.replace(cfg, num_layers=2)
    elif change == "train data":
        with open(cfg.train_data, "a", encoding="utf-8") as f:
            f.write(json.dumps({"text": "One more document."}) + "\n")
    elif change == "batch":
        cfg = dataclasses.replace(cfg, batch_tokens=128)
    with pytest.raises(ValueError, match=rf"cannot resume from .*step-00000002\.pt.*{message}.*another --out-dir"):
        pretrain(cfg)


def test_safe_changes_on_resume_are_allowed(run_cfg, tmp_path):
    cfg = run_cfg("extended")
    pretrain(dataclasses.replace(cfg, stop_after=4))
    moved = tmp_path / "moved.jsonl"  # the same data under another name
    shutil.copyfile(cfg.train_data, moved)
    m = pretrain(dataclasses.replace(cfg, steps=10, eval_every=5, log_every=2, train_data=str(moved)))
    assert m["step"] == 10 and m["completed"]


# ----- bad corpora -----


def test_corpus_too_small_for_a_batch(run_cfg, tmp_path):
    small = tmp_path / "small.jsonl"
    small.write_text(json.dumps({"text": "The cat reads."}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"too small for one batch: \d+ tokens in 1 sequence\(s\) .* 256 tokens"):
        pretrain(run_cfg("small", train_data=str(small)))


def test_invalid_utf8_names_file_and_line(run_cfg, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"The cat reads the file.\nA dog sees a red ball.\nThe parser \xff returns.\n")
    with pytest.raises(ValueError, match=rf"{bad}:3: not valid UTF-8 \(byte 0xff at column 12\)"):
        pretrain(run_cfg("bad", train_data=str(bad)))
