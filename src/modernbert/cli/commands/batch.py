"""``modernbert batch``: a task over Parquet / JSONL / CSV files, to Parquet, locally or on Ray."""

from __future__ import annotations

import argparse
import sys

from ..errors import CLIError
from ..models import DTYPES, positive_int

HELP = "batch inference over Parquet/JSONL/CSV files, to Parquet (local or Ray)"
TASKS = ("embed", "classify", "ner", "fill-mask")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", choices=TASKS, metavar="TASK", help=f"one of {', '.join(TASKS)}")
    p.add_argument("-m", "--model", required=True, help="checkpoint folder, bundled model or hub id")
    p.add_argument("-i", "--input", nargs="+", required=True, metavar="PATH",
                   help="Parquet, JSONL or CSV files, or directories of them")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="output directory (Parquet); re-running into it skips the inputs already complete")
    p.add_argument("--text-column", default="text", metavar="NAME", help="the column of texts (default: text)")
    p.add_argument("--id-column", default=None, metavar="NAME",
                   help="a column every input must have, checked before any work (kept, as every column is)")
    p.add_argument("--batch-tokens", type=positive_int, default=None, metavar="N",
                   help="most real tokens per forward pass (default: 4096 on a CPU, 16384 on CUDA)")
    p.add_argument("--dtype", default="auto", choices=DTYPES, metavar="DTYPE",
                   help="weights dtype: auto, float32, bfloat16 or float16 (default: auto)")
    p.add_argument("--device", default=None, help="torch device of the local engine (default: cuda if available)")
    p.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="local: this process, streaming; ray: Ray Data with an actor pool (default: local)")
    p.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                   help="the Ray cluster to join (default: RAY_ADDRESS, else a new local one)")
    p.add_argument("--actors", type=positive_int, default=1, metavar="N", help="Ray actors (default: 1)")
    p.add_argument("--threads-per-actor", type=positive_int, default=1, metavar="N",
                   help="CPUs (torch threads) per Ray actor (default: 1)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")


def run(args: argparse.Namespace) -> int:
    """Run TASK over every row of the inputs and write Parquet: every input column, plus the results
    (embed: embedding, a fixed-size float32 list; classify: label, score; ner: entities, a list of structs;
    fill-mask: predictions, per mask a list of candidates).

    Output: DIR/<input name>/part-*.parquet, one folder per input, and DIR/<input name>/_SUCCESS.json once it is
    complete; read the whole directory as one table (pyarrow.dataset, pandas, Ray, DuckDB). An interrupted job
    re-run into the same DIR runs the remaining inputs only (and, locally, the rest of a half-done input).
    """
    try:
        from ...batch import run as run_batch
        from ...batch import summary_line
    except ImportError as e:
        if getattr(e, "name", None) != "pyarrow":
            raise
        raise CLIError("modernbert batch reads and writes Parquet with pyarrow: pip install pyarrow (or "
                       "'modernbert[ray]' for the ray engine)") from None
    from ..models import check_device, resolve_model

    resolve_model(args.model)
    check_device(args.device)
    if args.engine == "local":
        from ...runtime import configure_cpu

        configure_cpu()
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        summary = run_batch(args.input, args.task, args.model, output=args.output, text_column=args.text_column,
                            id_column=args.id_column, batch_tokens=args.batch_tokens, dtype=args.dtype,
                            device=args.device, engine=args.engine, ray_address=args.ray_address,
                            actors=args.actors, threads_per_actor=args.threads_per_actor, progress=progress)
    except ImportError as e:
        if "modernbert[ray]" in str(e):
            raise CLIError(str(e)) from None
        raise
    sys.stderr.write(summary_line(summary) + "\n")
    return 0
