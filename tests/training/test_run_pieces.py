"""The pieces every trainer and job shares, on their own: Checkpointer, RunLog, resume inputs, threads."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import torch
from fault_injection import FullDisk, tear_last_line, truncate

from modernbert import hub
from modernbert.training import Checkpointer, RunLog, check_resume_inputs, choose_threads
from modernbert.training.runinputs import changed_inputs, file_digest


def _state(step: int) -> dict:
    return {"step": step, "weights": torch.full((64, 64), float(step)), "history": [0.5] * step}


# ----- Checkpointer -----


def test_checkpointer_saves_verifies_and_keeps_the_newest(tmp_path):
    ckpt = Checkpointer(tmp_path / "ckpt", keep=2)
    assert ckpt.load_latest() is None
    (tmp_path / "ckpt").mkdir()
    unrelated = [tmp_path / "ckpt" / name for name in ("step-1.pt", "step-00000001.pt.bak", "notes.json")]
    for p in unrelated:
        p.write_bytes(b"not a checkpoint of ours")
    for step in (1, 2, 3):
        ckpt.save(step, _state(step))
    assert [p.name for p in ckpt.checkpoints()] == ["step-00000002.pt", "step-00000003.pt"]
    assert not (tmp_path / "ckpt" / "step-00000001.json").exists()  # pruned with its checkpoint
    record = json.loads((tmp_path / "ckpt" / "step-00000003.json").read_text())
    assert record["size"] == ckpt.path(3).stat().st_size and len(record["sha256"]) == 64
    assert ckpt.problem(ckpt.path(3)) is None
    restored = ckpt.load_latest()
    assert restored.step == 3 and restored.skipped == []
    assert torch.equal(restored.state["weights"], _state(3)["weights"])
    assert all(p.read_bytes() == b"not a checkpoint of ours" for p in unrelated)


def test_checkpointer_falls_back_and_sets_the_damaged_one_aside(tmp_path, caplog):
    ckpt = Checkpointer(tmp_path, keep=3)
    for step in (1, 2):
        ckpt.save(step, _state(step))
    truncate(ckpt.path(2), 0.9)
    with caplog.at_level(logging.WARNING, logger="modernbert"):
        restored = ckpt.load_latest()
    assert restored.step == 1 and restored.skipped[0][0] == ckpt.path(2)
    (message,) = [r.getMessage() for r in caplog.records]
    assert str(ckpt.path(2)) in message and "truncated" in message and "step-00000001.pt" in message
    assert (tmp_path / "step-00000002.pt.damaged").is_file() and (tmp_path / "step-00000002.json.damaged").is_file()
    assert [p.name for p in ckpt.checkpoints()] == ["step-00000001.pt"]
    ckpt.save(2, _state(2))  # the run writes that step again; the damaged copy stays
    assert ckpt.load_latest().step == 2 and (tmp_path / "step-00000002.pt.damaged").is_file()


def test_checkpoint_without_record_is_verified_by_loading(tmp_path):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(5, _state(5))
    Checkpointer.record_path(ckpt.path(5)).unlink()  # e.g. copied without it
    assert ckpt.load_latest().step == 5


def test_checkpointer_full_disk_names_path_and_size_and_keeps_the_previous(tmp_path, monkeypatch):
    ckpt = Checkpointer(tmp_path, keep=2)
    ckpt.save(1, _state(1))
    size = ckpt.path(1).stat().st_size
    before = ckpt.path(1).read_bytes()
    FullDisk(monkeypatch, tmp_path, free=size // 2)
    with pytest.raises(hub.DiskFullError) as raised:
        ckpt.save(2, _state(2))
    message = str(raised.value)
    assert f"no space left on device while writing {ckpt.path(2)}" in message
    assert "16.0 KB needed" in message  # the 64 x 64 float32 tensor
    assert ckpt.path(1).read_bytes() == before and ckpt.problem(ckpt.path(1)) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001.json", "step-00000001.pt"]


# ----- RunLog -----


def test_runlog_appends_cuts_back_and_restarts(tmp_path):
    log = RunLog(tmp_path / "log.jsonl")
    for step in range(5):
        log.append({"step": step, "event": "train", "loss": 1.0 / (step + 1)})
    log.append({"step": 4, "event": "eval", "loss": 0.1})
    before = (tmp_path / "log.jsonl").read_bytes()
    log.cut_back(4)
    assert (tmp_path / "log.jsonl").read_bytes() == before
    log.cut_back(2)
    assert [(r["step"], r["event"]) for r in log.records()] == [(0, "train"), (1, "train"), (2, "train")]
    assert (tmp_path / "log.jsonl").read_bytes() == before[: len((tmp_path / "log.jsonl").read_bytes())]
    log.restart()
    assert log.records() == [] and (tmp_path / "log.jsonl").read_bytes() == b""


def test_runlog_drops_torn_and_unreadable_lines_with_a_warning(tmp_path, caplog):
    path = tmp_path / "log.jsonl"
    log = RunLog(path)
    log.append({"step": 1})
    with path.open("ab") as f:
        f.write(b'{"step": 2, "ev\n')  # a torn line that a later append finished with its newline
    log.append({"step": 3})
    tear_last_line(path)
    with caplog.at_level(logging.WARNING, logger="modernbert"):
        assert log.records() == [{"step": 1}, {"step": 3}]
        log.cut_back(10)
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"{path}:2: dropped an unreadable line" in m for m in messages)
    assert any(f"{path}:4: dropped a torn last line" in m for m in messages)
    assert path.read_text() == '{"step": 1}\n{"step": 3}\n'


def test_runlog_full_disk_adds_nothing(tmp_path, monkeypatch):
    path = tmp_path / "log.jsonl"
    log = RunLog(path)
    log.append({"step": 1, "event": "train"})
    before = path.read_bytes()
    disk = FullDisk(monkeypatch, path, free=10)
    with pytest.raises(hub.DiskFullError, match=rf"no space left on device while writing {path}.*needed"):
        log.append({"step": 2, "event": "train", "loss": 0.5})
    assert path.read_bytes() == before
    disk.free = 1000
    log.append({"step": 2, "event": "train"})
    assert [r["step"] for r in log.records()] == [1, 2]


# ----- resume inputs -----


def test_changed_inputs_name_each_difference(tmp_path):
    saved = {"tokenizer": {"tokenizer.json": "a" * 64}, "model_config": {"vocab_size": 320, "num_layers": 3},
             "options": {"seq_len": 32}}
    now = {"tokenizer": {"tokenizer.json": "b" * 64}, "model_config": {"vocab_size": 320, "num_layers": 4},
           "options": {"seq_len": 32, "world_size": 2}}
    assert changed_inputs(saved, saved) == []
    assert changed_inputs(saved, now) == [
        "model_config.num_layers: 3 → 4", "options.world_size: absent → 2",
        f"tokenizer.tokenizer.json: {'a' * 12}… → {'b' * 12}…",
    ]
    with pytest.raises(ValueError, match=r"cannot resume from ckpt.pt: .*num_layers: 3 → 4.*another --out-dir"):
        check_resume_inputs(saved, now, "ckpt.pt")
    check_resume_inputs(saved, json.loads(json.dumps(saved)), "ckpt.pt")


def test_file_digest_follows_content_not_name(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text("one\n")
    shutil.copyfile(a, tmp_path / "b.jsonl")
    assert file_digest(a) == file_digest(tmp_path / "b.jsonl")
    first = file_digest(a)
    a.write_text("two\n")  # same size, new content
    assert file_digest(a) != first


# ----- threads -----


def test_threads_follow_the_flag_then_omp_num_threads_then_cores(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert choose_threads(5) == (5, "--num-threads")
    assert choose_threads(None) == (3, "OMP_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "2,1")  # OpenMP's nested form
    assert choose_threads(None) == (2, "OMP_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="OMP_NUM_THREADS='many'.*--num-threads"):
        choose_threads(None)
    monkeypatch.delenv("OMP_NUM_THREADS")
    cores = os.cpu_count() or 1
    assert choose_threads(None, local_processes=2)[0] == max(1, cores // 2)


def test_pretrain_honours_omp_num_threads_and_logs_it(tiny_cfg, monkeypatch):
    from modernbert.training import pretrain

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = tiny_cfg("threads", steps=1, num_threads=None, save_every=0, eval_every=0)
    pretrain(cfg)
    start = json.loads((Path(cfg.out_dir) / "log.jsonl").read_text().splitlines()[0])
    assert start["event"] == "start" and start["threads"] == 1 and start["threads_from"] == "OMP_NUM_THREADS"
    assert torch.get_num_threads() == 1
