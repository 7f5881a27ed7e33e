#!/usr/bin/env python
"""A two-node Ray cluster on this machine, and a `modernbert batch` job whose actors run on both nodes.

Starts a head (`ray start --head` on 127.0.0.1) and a second node (`ray start --address 127.0.0.1:PORT`), two
logical CPUs each (an actor takes one; reading and writing need a fraction of one, which a node of one CPU
would not have left once its actor runs), in a temporary --temp-dir; runs `modernbert batch embed --engine ray
--actors 2` against it (the engine spreads its actors over the nodes); prints the batches and rows each node ran
(from the actors' logs); stops the cluster (`ray stop`).

    python benchmarks/ray_two_nodes.py --rows 200
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=200)
    p.add_argument("--port", type=int, default=6391)
    p.add_argument("--model", default="modernbert-tiny")
    args = p.parse_args(argv)
    import pyarrow as pa
    import pyarrow.parquet as pq

    work = Path(tempfile.mkdtemp(prefix="ray2n."))
    temp = work / "ray"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
           "RAY_AUTH_MODE": "disabled"}
    address = f"127.0.0.1:{args.port}"
    common = ["--num-cpus", "2", "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    try:
        subprocess.run(["ray", "start", "--head", "--port", str(args.port), "--temp-dir", str(temp),
                        "--include-dashboard=false", *common], check=True, env=env)
        subprocess.run(["ray", "start", "--address", address, *common], check=True, env=env)
        texts = [f"row {i}: " + "word " * (i % 50) for i in range(args.rows)]
        pq.write_table(pa.table({"id": list(range(args.rows)), "text": texts}), work / "in.parquet", row_group_size=16)
        cmd = [sys.executable, "-m", "modernbert.cli", "batch", "embed", "--model", args.model, "--input",
               str(work / "in.parquet"), "--output", str(work / "out"), "--engine", "ray", "--ray-address", address,
               "--actors", "2"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        print("\n".join(line for line in proc.stderr.splitlines() if "rows" in line or "node" in line))
        logs = sorted((work / "out" / "_logs").glob("*.jsonl"))
        for f in logs:
            events = [json.loads(line) for line in f.read_text().splitlines()]
            batches = [e for e in events if e["event"] == "batch"]
            print(f"actor pid {events[0]['pid']} on node {events[0]['node'][:12]}: {len(batches)} batches, "
                  f"{sum(e['rows'] for e in batches)} rows")
        nodes = {json.loads(f.read_text().splitlines()[0])["node"] for f in logs}
        print(f"exit code {proc.returncode}; actors on {len(nodes)} node(s)")
        return 0 if proc.returncode == 0 and len(nodes) == 2 else 1
    finally:
        subprocess.run(["ray", "stop", "--force"], env=env)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
