"""hub.py: stale temporaries of killed saves are ours by name and dead pid, and nothing else is touched."""

from __future__ import annotations

import os
import subprocess
import sys

from modernbert import hub


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_current_and_legacy_names(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    stale = [f".model.safetensors.{dead}.abc123{hub.TMP_SUFFIX}", f".step-40.pt.tmp{dead}",
             f".metrics.json.tmp{dead}"]
    kept = [f".model.safetensors.{alive}.abc123{hub.TMP_SUFFIX}",  # a save under way in this process
            f".step-40.pt.tmp{alive}", "step-40.pt", "notes.tmp", f".mydata.csv.tmp{dead}", ".hidden"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in hub.stale_temporaries(tmp_path)] == sorted(stale)
    hub.write_atomic(tmp_path / "config.json", b"{}")  # a save cleans the folder it writes into
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["config.json"])
