"""Token-budget batching: one inference thread that runs the inputs of many requests together.

A request is split into `Job`s, one per input, each with its token count (counted off the event loop, before it
is queued). The worker thread takes jobs from the queue in arrival order until the next one would pass
`max_batch_tokens` real tokens (or `max_batch_requests` inputs), so one batch may hold inputs of many requests
and the inputs of one request may span batches. Jobs of the same task and options go to the task's
`Pipeline.run` in one call, with `batch_size` set to their count, so they run as one packed forward pass (no
padding). Each job's future gets its own result, through the event loop's `call_soon_threadsafe`.

Two threads, double-buffered: the assembler takes jobs from the queue into the next batch while the model thread
runs the current one; the model thread takes the next batch as soon as it is free (at once when it is idle, so a
lone request is not held back), and the assembler starts the one after.

A request whose client has gone is marked `cancelled`; its jobs still in the queue are dropped when the worker
reaches them.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("modernbert.serve")

# run(task, items, options) → one result per item.
Runner = Callable[[str, list[Any], dict[str, Any]], list[Any]]
_STOP = object()  # the queue's end marker


class ShuttingDown(RuntimeError):
    """The server is stopping and takes no new work."""


@dataclass
class RequestState:
    """What the jobs of one request share: whether its client is still there."""

    cancelled: bool = False


@dataclass
class Job:
    """One input of one request, queued for the worker."""

    task: str  # which pipeline runs it ("embed", "classify", ...)
    item: Any  # what that pipeline's `run` takes for one input
    options: tuple[tuple[str, Any], ...]  # the pipeline options, hashable (jobs batch together only when equal)
    tokens: int  # real tokens the input costs in a batch
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    state: RequestState
    queued_at: float = field(default_factory=time.perf_counter)
    queue_time: float = 0.0  # seconds from queued to its batch starting
    inference_time: float = 0.0  # seconds its batch ran
    result: Any = None
    error: BaseException | None = None

    def resolve(self) -> None:
        """Hand `result` (or `error`) to the waiting request, on its event loop."""
        result, error = self.result, self.error

        def done() -> None:
            if self.future.done():  # the request was cancelled meanwhile
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        self.loop.call_soon_threadsafe(done)


@dataclass
class BatchStats:
    """What the worker reports of each batch (for /metrics)."""

    size: int
    tokens: int
    seconds: float


class Batcher:
    """The inference worker: a thread that builds batches by a token budget and runs them.

    run: `run(task, items, options) -> results`, one result per item (the pipelines' `run`).
    max_batch_tokens: most real tokens in one batch (a single longer input still runs, alone).
    max_batch_requests: most inputs in one batch (None: no limit beyond the tokens).
    on_batch: called in the worker thread after each batch, with its `BatchStats`.
    """

    def __init__(
        self,
        run: Runner,
        *,
        max_batch_tokens: int,
        max_batch_requests: int | None = None,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        if max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens={max_batch_tokens} must be at least 1")
        if max_batch_requests is not None and max_batch_requests < 1:
            raise ValueError(f"max_batch_requests={max_batch_requests} must be at least 1")
        self._run = run
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_requests = max_batch_requests
        self._on_batch = on_batch
        self._queue: queue.Queue[Any] = queue.Queue()  # Job, or _STOP
        self._held: Job | None = None  # a job taken from the queue that did not fit the next batch
        self._next_batch: list[Job] = []  # being assembled while the model thread runs the current one
        self._next_tokens = 0
        self._assembled = False  # the assembler reached the stop marker: no more batches after _next_batch
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="modernbert-serve-worker", daemon=True)
        self._assembler = threading.Thread(target=self._assemble, name="modernbert-serve-assembler", daemon=True)
        self._stopping = False

    def start(self) -> None:
        self._assembler.start()
        self._thread.start()

    def alive(self) -> bool:
        """Whether the worker threads are running."""
        return self._thread.is_alive() and self._assembler.is_alive()

    def queue_size(self) -> int:
        """Jobs waiting (an estimate, as the queue moves while it is read)."""
        return self._queue.qsize() + (self._held is not None) + len(self._next_batch)

    def assembled(self) -> int:
        """Jobs already in the next batch, waiting for the model thread."""
        return len(self._next_batch)

    def submit(self, jobs: list[Job]) -> None:
        """Queue the jobs, in order."""
        if self._stopping:
            raise ShuttingDown("the server is shutting down; retry on another replica or after the restart")
        for job in jobs:
            self._queue.put(job)

    def stop(self, timeout: float | None = None) -> None:
        """Finish the queued jobs, then end the threads."""
        self._stopping = True
        self._queue.put(_STOP)
        for thread in (self._assembler, self._thread):
            if thread.is_alive():
                thread.join(timeout)

    # ----- the assembler thread -----

    def _fits(self, job: Job) -> bool:
        if not self._next_batch:
            return True  # a single input over the budget still runs, alone
        full = self.max_batch_requests is not None and len(self._next_batch) >= self.max_batch_requests
        return not full and self._next_tokens + job.tokens <= self.max_batch_tokens

    def _assemble(self) -> None:
        """Move jobs from the queue into the next batch, waiting for the model thread when it is full."""
        while True:
            job = self._queue.get()
            if job is _STOP:
                break
            if job.state.cancelled:  # its client has gone: the request already cancelled its futures
                continue
            with self._cond:
                self._held = job
                while not self._fits(job):
                    self._cond.wait()  # the model thread takes the batch, then notifies
                self._held = None
                self._next_batch.append(job)
                self._next_tokens += job.tokens
                self._cond.notify_all()
        with self._cond:
            self._assembled = True
            self._cond.notify_all()

    # ----- the model thread -----

    def _take_batch(self) -> tuple[list[Job], bool]:
        """The assembled batch (waiting for its first job), and whether it is the last one."""
        with self._cond:
            while not self._next_batch and not self._assembled:
                self._cond.wait()
            batch, self._next_batch, self._next_tokens = self._next_batch, [], 0
            last = self._assembled and self._held is None
            self._cond.notify_all()
        return [j for j in batch if not j.state.cancelled], last

    def _loop(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take_batch()
            if batch:
                try:
                    self._run_batch(batch)
                except BaseException as e:  # pragma: no cover - a bug here must not leave requests waiting
                    logger.exception("the inference worker failed")
                    for job in batch:
                        job.error = job.error or e
                        job.resolve()
        while True:  # jobs queued while stopping (a race with `submit`): answer them, never leave them waiting
            try:
                job = self._queue.get(block=False)
            except queue.Empty:
                return
            if job is not _STOP:
                job.error = ShuttingDown("the server is shutting down")
                job.resolve()

    def _run_batch(self, batch: list[Job]) -> None:
        start = time.perf_counter()
        for job in batch:
            job.queue_time = start - job.queued_at
        groups: dict[tuple[str, tuple[tuple[str, Any], ...]], list[Job]] = {}
        for job in batch:
            groups.setdefault((job.task, job.options), []).append(job)
        for (task, options), jobs in groups.items():
            self._run_group(task, dict(options), jobs)
        seconds = time.perf_counter() - start
        if self._on_batch is not None:
            self._on_batch(BatchStats(len(batch), sum(j.tokens for j in batch), seconds))
        for job in batch:
            job.inference_time = seconds
            job.resolve()

    def _run_group(self, task: str, options: dict[str, Any], jobs: list[Job]) -> None:
        try:
            results = self._run(task, [j.item for j in jobs], options)
        except Exception as e:
            if len(jobs) == 1:
                jobs[0].error = e
                return
            # One bad input must not fail the others of the batch: run each alone to find whose it is.
            logger.warning("a batch of %d %s inputs failed (%s); running them one by one", len(jobs), task, e)
            for job in jobs:
                self._run_group(task, options, [job])
            return
        for job, result in zip(jobs, results):
            job.result = result
