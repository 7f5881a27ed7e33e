"""save_pretrained: state_dict=, sharding, .bin, stale layouts, whole-folder atomicity under kill -9, full disks.

Every layout is checked against the reference: it must load in transformers with the same outputs as ours.
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import random
import re
import signal
import struct
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import pytest
import torch
import transformers
from conftest import padded_batch

import modernbert.hub as hub
import modernbert.model as M
from modernbert.checkpoint import shard_size_bytes
from modernbert.errors import DiskFullError

TOL = 1e-4
LAYOUTS = {
    "safetensors": (dict(), {"model.safetensors"}),
    "safetensors-sharded": (dict(max_shard_size="40KB"), None),
    "bin": (dict(safe_serialization=False), {"pytorch_model.bin"}),
    "bin-sharded": (dict(safe_serialization=False, max_shard_size=40_000), None),
}
SHARD = re.compile(r"^(model-\d{5}-of-(\d{5})\.safetensors|pytorch_model-\d{5}-of-(\d{5})\.bin)$")


def weight_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if hub.is_weight_file(p.name)}


def expected_weight_files(folder: Path, layout: str) -> None:
    """The weight files are exactly those of `layout`, named as transformers names them."""
    found = weight_files(folder)
    single = LAYOUTS[layout][1]
    if single is not None:
        assert found == single, (layout, found)
        return
    safe = layout.startswith("safetensors")
    index = "model.safetensors.index.json" if safe else "pytorch_model.bin.index.json"
    shards = found - {index}
    assert index in found and len(shards) > 1, (layout, found)
    total = len(shards)
    stem, ext = ("model", "safetensors") if safe else ("pytorch_model", "bin")
    assert shards == {f"{stem}-{i:05d}-of-{total:05d}.{ext}" for i in range(1, total + 1)}
    weight_map = json.loads((folder / index).read_text())["weight_map"]
    assert set(weight_map.values()) == shards


def load_ref(arch: str, folder: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(transformers, arch).from_pretrained(folder).eval()


def logit_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Max |a - b| over real tokens (per-token logits) or everywhere (per-sequence logits)."""
    if a.dim() == 3:
        a, b = a[mask.bool()], b[mask.bool()]
    return (a - b).abs().max().item()


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def mlm(tiny_checkpoint):
    return M.ModernBertForMaskedLM.from_pretrained(tiny_checkpoint("ModernBertForMaskedLM"))


@pytest.fixture(scope="module")
def classifier(tiny_checkpoint):
    return M.ModernBertForSequenceClassification.from_pretrained(
        tiny_checkpoint("ModernBertForSequenceClassification")
    )


# ----- layouts -----


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_round_trips_here_and_in_transformers(mlm, classifier, layout, tmp_path):
    ids, mask = padded_batch([5, 17, 30])
    for arch, model in (("ModernBertForMaskedLM", mlm), ("ModernBertForSequenceClassification", classifier)):
        folder = tmp_path / arch
        model.save_pretrained(folder, **LAYOUTS[layout][0])
        expected_weight_files(folder, layout)
        ours = getattr(M, arch).from_pretrained(folder)
        assert same_state(ours, model)
        ref = load_ref(arch, folder)
        with torch.no_grad():
            expected = model(ids, mask).logits
            assert torch.equal(ours(ids, mask).logits, expected)
            assert logit_diff(ref(input_ids=ids, attention_mask=mask).logits, expected, mask) < TOL


def test_shards_as_transformers_writes_them(mlm, tmp_path):
    """Shard sizes respect max_shard_size, and the index holds what transformers' index holds."""
    limit = 40_000
    mlm.save_pretrained(tmp_path / "ours", max_shard_size=limit)
    load_ref("ModernBertForMaskedLM", tmp_path / "ours").save_pretrained(tmp_path / "ref", max_shard_size=limit)
    ours = json.loads((tmp_path / "ours" / "model.safetensors.index.json").read_text())
    ref = json.loads((tmp_path / "ref" / "model.safetensors.index.json").read_text())
    assert ours["metadata"] == ref["metadata"]  # total_size and total_parameters
    assert ours["weight_map"].keys() == ref["weight_map"].keys()  # the tied decoder is stored by neither
    assert "decoder.weight" not in ours["weight_map"]
    assert weight_files(tmp_path / "ours") == weight_files(tmp_path / "ref")  # same number of shards, same names
    from safetensors.torch import load_file

    for name in set(ours["weight_map"].values()):
        tensors = load_file(tmp_path / "ours" / name)
        size = sum(t.numel() * t.element_size() for t in tensors.values())
        assert size <= limit or len(tensors) == 1, (name, size)  # only a lone tensor may exceed the limit
        assert {k for k, v in ours["weight_map"].items() if v == name} == set(tensors)


def test_state_dict_argument(mlm, tmp_path):
    state = {k: v.clone() for k, v in mlm.state_dict().items()}
    state["head.dense.weight"] = torch.zeros_like(state["head.dense.weight"])
    state["model.final_norm.weight"] = torch.full_like(state["model.final_norm.weight"], 2.0)
    assert "decoder.weight" in state  # the tied decoder, which is not stored
    mlm.save_pretrained(tmp_path, state_dict=state)
    from safetensors.torch import load_file

    stored = load_file(tmp_path / "model.safetensors")
    assert set(stored) == set(state) - {"decoder.weight"}
    ours = M.ModernBertForMaskedLM.from_pretrained(tmp_path)
    assert torch.equal(ours.head.dense.weight, state["head.dense.weight"])
    assert torch.equal(ours.model.final_norm.weight, state["model.final_norm.weight"])
    assert not torch.equal(ours.head.dense.weight, mlm.head.dense.weight)
    ref = load_ref("ModernBertForMaskedLM", tmp_path)
    ids, mask = padded_batch([9, 21])
    with torch.no_grad():
        assert logit_diff(ref(input_ids=ids, attention_mask=mask).logits, ours(ids, mask).logits, mask) < TOL
    with pytest.raises(ValueError, match="state_dict= must map"):
        mlm.save_pretrained(tmp_path / "bad", state_dict={"x": [1.0]})


def test_layout_switches_leave_no_stale_files(mlm, tmp_path):
    """Each save replaces the weights of every earlier layout, and keeps every other file of the folder."""
    folder = tmp_path / "ckpt"
    folder.mkdir()
    keep = {"tokenizer.json": "{}", "README.md": "# card\n", "sub/deeper/notes.txt": "notes",
            "model.fp16.safetensors": "not a layout the loader reads"}
    for name, text in keep.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    os.symlink("README.md", folder / "card-link")
    (folder / "sub" / "deeper").chmod(0o555)  # a read-only subfolder keeps its mode
    ids, mask = padded_batch([12])
    with torch.no_grad():
        expected = mlm(ids, mask).logits
    for layout in ("safetensors-sharded", "safetensors", "bin-sharded", "bin", "safetensors-sharded", "bin",
                   "safetensors"):
        mlm.save_pretrained(folder, **LAYOUTS[layout][0])
        expected_weight_files(folder, layout)
        assert {name: (folder / name).read_text() for name in keep} == keep
        assert os.readlink(folder / "card-link") == "README.md"
        assert (folder / "sub" / "deeper").stat().st_mode & 0o777 == 0o555
        assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
        with torch.no_grad():
            assert torch.equal(M.ModernBertForMaskedLM.from_pretrained(folder)(ids, mask).logits, expected)


def test_shard_size_parsing():
    assert shard_size_bytes("5GB") == 5 * 10**9
    assert shard_size_bytes("500MB") == 500 * 10**6
    assert shard_size_bytes("20kb") == 20_000
    assert shard_size_bytes("1.5GiB") == 3 * 2**29
    assert shard_size_bytes(1234) == 1234
    for bad in ("5XB", "GB", "-1GB", "0MB", 0, -5, True, 1.5, None):
        with pytest.raises(ValueError, match="max_shard_size"):
            shard_size_bytes(bad)


def test_arguments_of_transformers_save_pretrained(mlm, tmp_path):
    mlm.save_pretrained(tmp_path / "rank1", is_main_process=False)
    assert not (tmp_path / "rank1").exists()
    mlm.save_pretrained(tmp_path / "ok", token=None, save_peft_format=True, save_original_format=True)
    assert (tmp_path / "ok" / "model.safetensors").is_file()
    with pytest.raises(TypeError, match="max_shard_sise"):
        mlm.save_pretrained(tmp_path / "typo", max_shard_sise="1GB")
    with pytest.raises(ValueError, match="upload_folder"):
        mlm.save_pretrained(tmp_path / "hub", push_to_hub=True)
    with pytest.raises(ValueError, match="variant"):
        mlm.save_pretrained(tmp_path / "variant", variant="fp16")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        mlm.save_pretrained(tmp_path / "file")
    assert not (tmp_path / "typo").exists() and not (tmp_path / "hub").exists()


# ----- debris of killed saves -----


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_debris_removed_and_nothing_else(mlm, tmp_path):
    folder = tmp_path / "ckpt"
    mlm.save_pretrained(folder)
    pid, now = dead_pid(), time.time()
    stale_dir = tmp_path / f".ckpt.{pid}.abc_12{hub.STAGING_SUFFIX}"
    (stale_dir / "sub").mkdir(parents=True)
    (stale_dir / "sub" / "model.safetensors").write_bytes(b"partial")
    stale_tmp = folder / f".model.safetensors.{pid}.x1y2{hub.TMP_SUFFIX}"
    legacy_old = folder / ".model.safetensors.ab12cd34.tmp"
    for path in (stale_tmp, legacy_old):
        path.write_bytes(b"partial")
    os.utime(legacy_old, (now - 2 * hub.LEGACY_TMP_SECONDS,) * 2)
    kept = [
        tmp_path / f".ckpt.{os.getpid()}.live{hub.STAGING_SUFFIX}",  # a save running now
        tmp_path / f".other.{pid}.abc{hub.STAGING_SUFFIX}",  # another folder's
        tmp_path / f".ckpt.{pid}.abc.saving-not",  # not our name
        folder / ".model.safetensors.ab12cd35.tmp",  # legacy but recent: its writer may be alive
        folder / ".notes.ab12cd34.tmp",  # legacy pattern, not a checkpoint file
        folder / f".model.safetensors.{os.getpid()}.live{hub.TMP_SUFFIX}",
    ]
    for path in kept:
        if path.name.endswith(hub.STAGING_SUFFIX):
            path.mkdir()
        else:
            path.write_bytes(b"x")
    old = os.path.getmtime(kept[4]) - 2 * hub.LEGACY_TMP_SECONDS
    os.utime(kept[4], (old, old))
    mlm.save_pretrained(folder, max_shard_size="40KB")
    assert not stale_dir.exists() and not stale_tmp.exists() and not legacy_old.exists()
    for path in kept:
        assert path.exists(), path
    # A staging folder locked by a running save is never removed, whatever its pid.
    import fcntl

    locked = tmp_path / f".ckpt.{pid}.locked{hub.STAGING_SUFFIX}"
    locked.mkdir()
    fd = os.open(locked, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert locked not in hub.stale_staging_folders(folder)
    finally:
        os.close(fd)
    assert locked in hub.stale_staging_folders(folder)


def test_save_from_inside_the_folder(mlm, tmp_path, monkeypatch):
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    mlm.save_pretrained(folder)
    monkeypatch.chdir(folder / "sub")
    mlm.save_pretrained("..", safe_serialization=False)
    assert Path.cwd() == folder / "sub" and Path("..", "pytorch_model.bin").is_file()
    assert not Path("..", "model.safetensors").exists()


# ----- kill -9 during saves -----

VARIANT_LAYOUTS = ("safetensors", "safetensors-sharded", "bin", "bin-sharded")


def make_variant(base: torch.nn.Module, model: torch.nn.Module, i: int) -> str:
    """Turn `model` into save number `i`: its own labels, an `extra` marker, weights base + f(i); returns the
    layout save `i` uses."""
    model.config = base.config.replace(
        id2label={0: f"neg-{i}", 1: f"pos-{i}"}, label2id={f"neg-{i}": 0, f"pos-{i}": 1},
        extra={**base.config.extra, "save_id": i},
    )
    with torch.no_grad():
        for k, (p, q) in enumerate(zip(model.parameters(), base.parameters())):
            p.copy_(q + i * 1e-3 * (k + 1))
    return VARIANT_LAYOUTS[i % len(VARIANT_LAYOUTS)]


def _saver(base, model, folder: Path, start: int, progress: mmap.mmap, log: Path, count: int | None) -> None:
    """The child: saves start, start + 1, ... (`count` of them, or until killed), writing the number of each
    save before it starts."""
    try:
        i = start
        while count is None or i < start + count:
            progress[:8] = struct.pack("q", i)
            layout = make_variant(base, model, i)
            model.save_pretrained(folder, **LAYOUTS[layout][0])
            i += 1
    except BaseException:
        log.write_text(traceback.format_exc())
        os._exit(1)
    os._exit(0)


def check_checkpoint(folder: Path, base, scratch, allowed: tuple[int, ...]) -> int:
    """The folder loads (strictly) as one whole save among `allowed`: its config, weights and files."""
    loaded = M.ModernBertForSequenceClassification.from_pretrained(folder)
    j = loaded.config.extra.get("save_id")
    assert j in allowed, (j, allowed)
    layout = make_variant(base, scratch, j)
    assert loaded.config.id2label == scratch.config.id2label
    assert same_state(loaded, scratch), f"weights of another save than {j}'s config"
    expected_weight_files(folder, layout)
    assert (folder / "tokenizer.json").read_text() == "{}" and (folder / "sub" / "notes.txt").read_text() == "n"
    return j


@pytest.mark.skipif(not hasattr(os, "fork") or not sys.platform.startswith("linux"), reason="needs fork, Linux")
def test_kill_during_save_leaves_old_or_new_checkpoint(classifier, tmp_path):
    """kill -9 at random moments of back-to-back saves, each with its own config, weights and layout: after
    every kill the folder is exactly the previous save or the one under way, and after the next save no
    staging folder or temporary file remains."""
    import copy

    base, model, scratch = classifier, copy.deepcopy(classifier), copy.deepcopy(classifier)
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    (folder / "tokenizer.json").write_text("{}")
    (folder / "sub" / "notes.txt").write_text("n")
    make_variant(base, model, 0)
    model.save_pretrained(folder)
    progress = mmap.mmap(-1, 8)
    log = tmp_path / "child.log"

    def fork_saver(start: int, count: int | None) -> int:
        progress[:8] = struct.pack("q", start)
        pid = os.fork()
        if pid == 0:
            _saver(base, model, folder, start, progress, log, count)
        return pid

    # How long a child takes, from fork to the end of its first save (a large parent makes forks slower).
    save_seconds = 0.0
    for i in (1, 2):
        t0 = time.perf_counter()
        _, status = os.waitpid(fork_saver(i, 1), 0)
        save_seconds = max(save_seconds, time.perf_counter() - t0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, log.read_text() if log.exists() else status
        check_checkpoint(folder, base, scratch, (i,))
    current, next_id = 2, 3
    outcomes = {"old": 0, "new": 0}
    rng = random.Random(0)
    deadline = time.monotonic() + 25
    kills = 0
    while kills < 60 and time.monotonic() < deadline and not (kills >= 20 and min(outcomes.values()) >= 4):
        pid = fork_saver(next_id, None)
        time.sleep(rng.uniform(0, 2 * save_seconds))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), log.read_text() if log.exists() else status
        kills += 1
        started = struct.unpack("q", progress[:8])[0]
        old = started - 1 if started > next_id else current
        j = check_checkpoint(folder, base, scratch, (old, started))
        outcomes["new" if j == started else "old"] += 1
        for entry in tmp_path.iterdir():  # debris, if any, is only what a later save removes
            assert entry.name in ("ckpt", "child.log") or hub._staging_pattern("ckpt").match(entry.name), entry
        for entry in folder.iterdir():
            assert not entry.name.startswith("."), entry
        current, next_id = j, started + 1
    assert kills >= 12 and min(outcomes.values()) >= 1, (kills, outcomes)
    final = next_id + (-next_id) % len(VARIANT_LAYOUTS)  # a single-file save
    assert make_variant(base, model, final) == "safetensors"
    model.save_pretrained(folder)
    check_checkpoint(folder, base, scratch, (final,))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "sub", "tokenizer.json"]


# ----- full disks and the fallbacks -----


def enospc_after(monkeypatch, nbytes: int) -> None:
    """Make every write fail with ENOSPC once `nbytes` bytes of a file are written."""
    real = hub._write_all

    def write_all(fd: int, data) -> None:
        view = memoryview(data).cast("B")
        real(fd, view[:nbytes])
        if len(view) > nbytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(hub, "_write_all", write_all)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("mode", ["swap", "file-by-file"])
def test_disk_full_is_named_and_keeps_the_old_checkpoint(mlm, classifier, tmp_path, monkeypatch, mode):
    folder = tmp_path / "ckpt"
    mlm.save_pretrained(folder, max_shard_size="40KB")
    (folder / "tokenizer.json").write_text("{}")
    before = snapshot(folder)
    if mode == "file-by-file":
        monkeypatch.setattr(hub, "_why_not_swapped", lambda target: "it is a mount point")
    enospc_after(monkeypatch, 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DiskFullError, match=r"no space left on device while writing .*ckpt.model") as info:
            classifier.save_pretrained(folder)
    assert info.value.errno == errno.ENOSPC and str(folder) in str(info.value)
    assert snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    monkeypatch.undo()
    assert same_state(M.ModernBertForMaskedLM.from_pretrained(folder), mlm)


def test_exchange_refused_falls_back_with_a_warning(mlm, classifier, tmp_path, monkeypatch):
    folder = tmp_path / "ckpt"
    mlm.save_pretrained(folder, max_shard_size="40KB")
    (folder / "tokenizer.json").write_text("{}")

    def refuse(a, b):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(hub, "_renameat2_exchange", refuse)
    with pytest.warns(UserWarning, match="file by file.*cannot exchange folders") as record:
        classifier.save_pretrained(folder)
    assert record[0].filename == __file__  # the warning points at the caller
    expected_weight_files(folder, "safetensors")
    assert (folder / "tokenizer.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    assert same_state(M.ModernBertForSequenceClassification.from_pretrained(folder), classifier)


def test_file_by_file_where_no_swap_is_possible(mlm, classifier, tmp_path, monkeypatch):
    folder = tmp_path / "ckpt"
    classifier.save_pretrained(folder, safe_serialization=False, max_shard_size="40KB")
    monkeypatch.setattr(hub, "_why_not_swapped", lambda target: "it is a mount point")
    with pytest.warns(UserWarning, match="file by file.*mount point"):
        mlm.save_pretrained(folder)
    expected_weight_files(folder, "safetensors")
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    assert same_state(M.ModernBertForMaskedLM.from_pretrained(folder), mlm)
