"""The batcher alone (no server, no model): token budget, requests spanning batches, dropped and failing jobs."""

from __future__ import annotations

import asyncio
import threading

from modernbert.serve.batcher import Batcher, Job, RequestState


class Recorder:
    """A runner that records each call and can be held back, so that jobs pile up in the queue."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list, dict]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, task: str, items: list, options: dict) -> list:
        self.gate.wait(10)
        if any(i == "bad" for i in items):
            raise ValueError("a bad item")
        self.calls.append((task, list(items), dict(options)))
        return [f"{task}:{i}" for i in items]


def _jobs(loop, state, task, items, tokens, options=()) -> list[Job]:
    return [Job(task, item, tuple(options), n, loop.create_future(), loop, state) for item, n in zip(items, tokens)]


def test_budget_spans_and_mixes_requests():
    async def main():
        loop = asyncio.get_running_loop()
        runner = Recorder()
        batcher = Batcher(runner, max_batch_tokens=100)
        runner.gate.clear()  # the first batch blocks until everything is queued
        batcher.start()
        first = _jobs(loop, RequestState(), "embed", ["warm"], [10])
        batcher.submit(first)
        await asyncio.sleep(0.05)
        a = _jobs(loop, RequestState(), "embed", ["a1", "a2", "a3"], [40, 40, 40])  # 120 tokens: spans two batches
        b = _jobs(loop, RequestState(), "embed", ["b1", "b2"], [10, 10])
        big = _jobs(loop, RequestState(), "embed", ["huge"], [500])  # over the budget: runs alone
        batcher.submit(a)
        batcher.submit(b)
        batcher.submit(big)
        runner.gate.set()
        results = await asyncio.gather(*(j.future for j in first + a + b + big))
        batcher.stop(10)
        return runner.calls, results

    calls, results = asyncio.run(main())
    assert results == ["embed:warm", "embed:a1", "embed:a2", "embed:a3", "embed:b1", "embed:b2", "embed:huge"]
    batches = [items for _, items, _ in calls]
    assert batches == [["warm"], ["a1", "a2"], ["a3", "b1", "b2"], ["huge"]]


def test_groups_by_task_and_options_and_max_requests():
    async def main():
        loop = asyncio.get_running_loop()
        runner = Recorder()
        runner.gate.clear()
        batcher = Batcher(runner, max_batch_tokens=1000, max_batch_requests=3)
        batcher.start()
        batcher.submit(_jobs(loop, RequestState(), "embed", ["w"], [1]))
        await asyncio.sleep(0.05)
        jobs = (_jobs(loop, RequestState(), "embed", ["x", "y"], [5, 5], [("normalize", True)])
                + _jobs(loop, RequestState(), "embed", ["z"], [5], [("normalize", False)])
                + _jobs(loop, RequestState(), "fill", ["m"], [5]))
        batcher.submit(jobs)
        runner.gate.set()
        await asyncio.gather(*(j.future for j in jobs))
        batcher.stop(10)
        return runner.calls

    calls = asyncio.run(main())
    assert calls[1:] == [("embed", ["x", "y"], {"normalize": True}), ("embed", ["z"], {"normalize": False}),
                         ("fill", ["m"], {})]


def test_cancelled_requests_are_dropped_and_bad_inputs_isolated():
    async def main():
        loop = asyncio.get_running_loop()
        runner = Recorder()
        runner.gate.clear()
        batcher = Batcher(runner, max_batch_tokens=1000)
        batcher.start()
        batcher.submit(_jobs(loop, RequestState(), "embed", ["w"], [1]))
        await asyncio.sleep(0.05)
        gone = RequestState()
        dropped = _jobs(loop, gone, "embed", ["gone1", "gone2"], [5, 5])
        kept = _jobs(loop, RequestState(), "embed", ["ok", "bad", "ok2"], [5, 5, 5])
        batcher.submit(dropped)
        batcher.submit(kept)
        gone.cancelled = True
        for j in dropped:
            j.future.cancel()
        runner.gate.set()
        results = await asyncio.gather(*(j.future for j in kept), return_exceptions=True)
        batcher.stop(10)
        assert batcher.alive() is False
        return runner.calls, results

    calls, results = asyncio.run(main())
    assert all("gone1" not in items for _, items, _ in calls)
    assert results[0] == "embed:ok" and results[2] == "embed:ok2"
    assert isinstance(results[1], ValueError)


def _wait_until(condition, timeout: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_next_batch_is_assembled_while_one_runs():
    """Double buffering, without timing: while batch 1 is held inside the (slow) model, the jobs queued meanwhile
    leave the queue and form batch 2 (up to the budget); batch 3 waits for batch 2 to be taken."""

    class Traced(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.events: list[tuple[str, int, int]] = []  # (event, batch number, jobs assembled at that moment)
            self.batcher: Batcher | None = None

        def __call__(self, task, items, options):
            n = len(self.events) // 2 + 1
            self.events.append(("start", n, self.batcher.assembled()))
            out = super().__call__(task, items, options)
            self.events.append(("end", n, self.batcher.assembled()))
            return out

    async def main():
        loop = asyncio.get_running_loop()
        runner = Traced()
        runner.gate.clear()  # batch 1 stays in the model until the gate opens
        batcher = Batcher(runner, max_batch_tokens=30)
        runner.batcher = batcher
        batcher.start()
        first = _jobs(loop, RequestState(), "embed", ["k1"], [10])
        batcher.submit(first)
        assert await asyncio.to_thread(_wait_until, lambda: len(runner.events) == 1)  # batch 1 is running
        later = _jobs(loop, RequestState(), "embed", ["a", "b", "c", "d"], [10, 10, 10, 10])
        batcher.submit(later)
        # while batch 1 runs: a, b, c (30 tokens) are assembled into batch 2, d is held for batch 3
        assert await asyncio.to_thread(_wait_until, lambda: batcher.assembled() == 3 and batcher._queue.qsize() == 0)
        assert runner.events == [("start", 1, 0)] and batcher.queue_size() == 4
        runner.gate.set()
        results = await asyncio.gather(*(j.future for j in first + later))
        batcher.stop(10)
        return runner, results

    runner, results = asyncio.run(main())
    assert results == ["embed:k1", "embed:a", "embed:b", "embed:c", "embed:d"]
    assert [items for _, items, _ in runner.calls] == [["k1"], ["a", "b", "c"], ["d"]]
    assert runner.events[:2] == [("start", 1, 0), ("end", 1, 3)]  # batch 2 was complete before batch 1 ended
