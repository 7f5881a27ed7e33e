"""How many torch threads a training process uses, and why: the one rule every trainer and job follows.

1. `--num-threads N` (a config's `num_threads`) when given;
2. else `OMP_NUM_THREADS` when it is set (its first entry: OpenMP also accepts a list such as `4,2`);
3. else the machine's cores divided by the processes on this machine (`LOCAL_WORLD_SIZE` under torchrun).

torchrun sets `OMP_NUM_THREADS=1` for its workers unless it is already set, so a distributed run uses one
thread per process unless told otherwise.
"""

from __future__ import annotations

import os


def choose_threads(requested: int | None, local_processes: int = 1) -> tuple[int, str]:
    """The thread count of this process and where it comes from (for the run's log).

    requested: the explicit choice (`--num-threads`), or None.
    local_processes: training processes sharing this machine's cores.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"num_threads={requested} must be positive")
        return requested, "--num-threads"
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        first = env.split(",")[0].strip()
        if not first.isdigit() or int(first) < 1:
            raise ValueError(
                f"OMP_NUM_THREADS={env!r} is not a positive integer; set it to a number of threads, unset it, "
                "or pass --num-threads"
            )
        return int(first), "OMP_NUM_THREADS"
    cores = os.cpu_count() or 1
    return max(1, cores // max(1, local_processes)), f"{cores} cores / {local_processes} local process(es)"
