"""Data-parallel training under torchrun, shared by `pretrain` and `finetune`.

torchrun (one node or many, any rendezvous) sets `RANK`, `WORLD_SIZE`, `LOCAL_RANK` and `LOCAL_WORLD_SIZE`;
`setup` then joins the process group (gloo on CPU, nccl on CUDA). Without them a run is one process and every
helper here is a no-op, so the trainers hold no code of their own for the two cases.

The data of a run is one global order, fixed by the seed: every rank walks the same batches and takes its
share of each (`shard`: examples `rank, rank + world, ...`), so the position in the data is a global one (a
step, a batch index) and a checkpoint resumes on any number of processes.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass
class Dist:
    """This process's place in the run: `rank` of `world_size`, `local_rank` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False  # `setup` joined the process group, so `teardown` leaves it
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where collectives' tensors live

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """The process that evaluates, logs and writes files."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def shard(self, items: list) -> list:
        """This rank's share of a global batch: items `rank, rank + world, ...` (all of them on one process)."""
        return items[self.rank :: self.world_size] if self.enabled else items

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """The sums of `values` over the ranks (float64)."""
        if not self.enabled:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return t.tolist()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank (a picklable object)."""
        if not self.enabled:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]

    def all_reduce_grads(self, params: list[torch.nn.Parameter]) -> None:
        """Sum every parameter's gradient over the ranks, in one flat all-reduce.

        Each rank's loss is its share of the global loss (its summed loss over the global count), so the
        sum is the single-process gradient. A parameter without a gradient on every rank stays without one
        (as on one process, AdamW skips it); one that has a gradient somewhere gets zeros where it has none.
        """
        if not self.enabled:
            return
        params = [p for p in params if p.requires_grad]
        have = torch.tensor([float(p.grad is not None) for p in params], device=self.device)
        torch.distributed.all_reduce(have)
        used = [p for p, h in zip(params, have.tolist()) if h > 0]
        for p in used:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        if not used:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in used])  # (parameters,)
        torch.distributed.all_reduce(flat)
        offset = 0
        for p in used:
            n = p.grad.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n

    def gather_rows(self, local: Tensor) -> Tensor:
        """The global batch of per-example rows from every rank's `shard`: `local` (k, n_local, ...) ->
        (k, n_global, ...) in the global order.

        This rank's rows stay in the autograd graph, the other ranks' are constants: the gradient of a loss of
        the whole batch reaches this rank's rows only, and the summed gradients (`all_reduce_grads`) are the
        single-process ones.
        """
        if not self.enabled:
            return local
        counts = torch.tensor([local.shape[1]], device=local.device)
        every = [torch.zeros_like(counts) for _ in range(self.world_size)]
        torch.distributed.all_gather(every, counts)
        counts_list = [int(c) for c in every]
        most = max(counts_list)
        padded = local.detach().new_zeros((local.shape[0], most, *local.shape[2:]))
        padded[:, : local.shape[1]] = local.detach()
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        torch.distributed.all_gather(parts, padded)
        pieces = [local if q == self.rank else parts[q][:, :c] for q, c in enumerate(counts_list)]
        total = sum(counts_list)
        # the i-th row of rank q is example q + i * world of the global batch
        where = torch.cat([torch.arange(q, total, self.world_size) for q in range(self.world_size)])
        return torch.cat(pieces, 1)[:, torch.argsort(where).to(local.device)]


def setup(device: str) -> Dist:
    """Join the process group when torchrun started this process (`WORLD_SIZE` > 1); else one process.

    device: the run's device, `cpu` (gloo) or `cuda` / `cuda:N` (nccl, each rank on its local GPU).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(local_rank)
    here = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
        here = True
    where = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
    return Dist(rank=rank, world_size=world, local_rank=local_rank, initialised_here=here, device=where)


def teardown(dist: Dist) -> None:
    """Leave the process group if `setup` joined it: all ranks together after a run that ended normally
    (a rank that leaves while rank 0 still writes its files can abort in gloo at exit); at once when called
    while an exception unwinds, since the other ranks may never reach the barrier."""
    if dist.initialised_here:
        if sys.exc_info()[1] is None:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def run_device(device: str, dist: Dist) -> torch.device:
    """The device of this rank: its local GPU under torchrun with `cuda`, else `device`."""
    return torch.device(f"cuda:{dist.local_rank}") if device == "cuda" and dist.enabled else torch.device(device)


def local_processes(dist: Dist) -> int:
    """Training processes on this machine (they share its cores)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", str(dist.world_size)))
