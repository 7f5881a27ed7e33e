#!/usr/bin/env python
"""Batch inference throughput: the local engine against the plain pipeline, and the ray engine with 1 and 2 actors.

The texts are mixed-length cuts of the corpora that scripts/build_corpus.py reads (WordNet glosses, the Python
documentation's prose; Debian packages wordnet-base and python3-doc), written to one Parquet file.

- local vs plain: `modernbert.batch.run(..., engine="local")` and `pipeline.run(texts)` on the same texts, in
  interleaved rounds (plain, local, plain, local, ...), median seconds of each; the ratio local / plain rate.
- ray: the same file with 1 and 2 actors (one CPU each, after a warm-up job that starts the cluster); Ray's
  overhead per row is (ray seconds with 1 actor - plain seconds) / rows.
- N machines: an ON-PAPER ESTIMATE from the per-actor rate measured here and the 1 → 2 actor efficiency, not a
  measurement.

    python benchmarks/bench_batch.py --n 20000 --task embed --model modernbert-tiny --json out.json
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "src"))

TASK_PIPELINES = {"embed": "sentence-embeddings", "classify": "text-classification"}


def corpus_texts(n: int, seed: int = 0) -> list[str]:
    """`n` texts of 3 to 400 words (log-uniform lengths), cut from WordNet glosses and Python-docs sections."""
    from build_corpus import pydoc_units, wordnet_units

    units = [t for _, t in wordnet_units(Path("/usr/share/wordnet"), 1)]
    units += [t for _, t in pydoc_units(Path("/usr/share/doc/python3/html"))]
    if not units:
        raise SystemExit("no corpus: apt-get install -y wordnet-base python3-doc")
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        # a unit is often shorter than the length drawn (a WordNet unit is ~60 words): read on into the next ones
        length = int(round(3 * (400 / 3) ** rng.random()))
        i = rng.randrange(len(units))
        words = units[i].split()
        start = rng.randrange(len(words))
        words = words[start:]
        while len(words) < length:
            i = (i + 1) % len(units)
            words += units[i].split()
        texts.append(" ".join(words[:length]))
    return texts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20000, help="texts (default: 20000)")
    p.add_argument("--task", default="embed", choices=sorted(TASK_PIPELINES))
    p.add_argument("--model", default="modernbert-tiny")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of plain / local (default: 3)")
    p.add_argument("--batch-tokens", type=int, default=None, help="default: the engine's (4096 on a CPU)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the plain and local runs")
    p.add_argument("--no-ray", action="store_true", help="skip the ray engine")
    p.add_argument("--machines", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--actors-per-machine", type=int, default=8, help="for the on-paper estimate (default: 8)")
    p.add_argument("--json", default=None, metavar="PATH")
    args = p.parse_args(argv)

    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from modernbert import batch
    from modernbert.hub import resolve_folder
    from modernbert.pipelines import pipeline

    torch.set_num_threads(args.threads)
    model = str(resolve_folder(args.model))
    texts = corpus_texts(args.n)
    work = Path(tempfile.mkdtemp(prefix="bench_batch."))
    try:
        source = work / "texts.parquet"
        pq.write_table(pa.table({"id": list(range(len(texts))), "text": texts}), source, row_group_size=2048)
        pipe = pipeline(TASK_PIPELINES[args.task], model=model)
        tokens = sum(len(x) for x in pipe.tokenizer(texts, return_attention_mask=False)["input_ids"])
        plain, local = [], []
        for r in range(args.rounds):
            start = time.perf_counter()
            pipe.run(texts, batch_size=64)
            plain.append(time.perf_counter() - start)
            out = work / f"local-{r}"
            summary = batch.run(source, args.task, model, output=out, batch_tokens=args.batch_tokens)
            local.append(summary["seconds"])
            shutil.rmtree(out)
            print(f"round {r}: plain {plain[-1]:.2f} s, local {local[-1]:.2f} s", file=sys.stderr)
        t_plain, t_local = statistics.median(plain), statistics.median(local)
        report: dict = {"n": len(texts), "tokens": tokens, "task": args.task, "model": args.model,
                        "plain_rows_per_s": len(texts) / t_plain, "local_rows_per_s": len(texts) / t_local,
                        "local_over_plain": t_plain / t_local, "plain_seconds": plain, "local_seconds": local}
        if not args.no_ray:
            report.update(ray_figures(source, work, args, model, t_plain, len(texts)))
        print(json.dumps(report, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def ray_figures(source: Path, work: Path, args: argparse.Namespace, model: str, t_plain: float, n: int) -> dict:
    import ray

    from modernbert import batch

    ray.init(num_cpus=3, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        batch.run(source, args.task, model, output=work / "ray-warmup", engine="ray")  # cluster and workers up
        seconds = {}
        for actors in (1, 2):
            summary = batch.run(source, args.task, model, output=work / f"ray-{actors}", engine="ray",
                                actors=actors, batch_tokens=args.batch_tokens)
            seconds[actors] = summary["seconds"]
            print(f"ray {actors} actor(s): {seconds[actors]:.2f} s", file=sys.stderr)
    finally:
        ray.shutdown()
    per_actor = n / seconds[1]
    efficiency = (n / seconds[2]) / (2 * per_actor)
    estimate = {str(m): m * args.actors_per_machine * per_actor * efficiency for m in args.machines}
    return {"ray_rows_per_s": {str(a): n / s for a, s in seconds.items()},
            "ray_overhead_ms_per_row": 1000 * (seconds[1] - t_plain) / n,
            "ray_efficiency_1_to_2_actors": efficiency,
            "ESTIMATE_rows_per_s_on_N_machines": {
                "note": f"on paper, not measured: N x {args.actors_per_machine} actors x the measured per-actor "
                        "rate x the measured 1->2 actor efficiency; assumes storage and the driver keep up",
                **estimate}}


if __name__ == "__main__":
    raise SystemExit(main())
