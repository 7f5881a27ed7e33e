"""Prometheus metrics of one server, in their own registry, with TEI's metric names."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .batcher import BatchStats

_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_TOKENS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


class Metrics:
    """Request counts by route (and status, and error type), stage timings, batch sizes and the queue size."""

    def __init__(self, queue_size: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("te_request_count", "Requests, by route and HTTP status", ["route", "status"],
                                registry=r)
        self.success = Counter("te_request_success", "Requests answered 200, by route", ["route"], registry=r)
        self.failure = Counter("te_request_failure", "Requests that failed, by route and error type",
                               ["route", "err"], registry=r)
        self.duration = Histogram("te_request_duration", "Request time (s)", buckets=_SECONDS, registry=r)
        self.tokenization = Histogram("te_request_tokenization_duration", "Tokenization time per request (s)",
                                      buckets=_SECONDS, registry=r)
        self.queue = Histogram("te_request_queue_duration", "Queue time per input (s)", buckets=_SECONDS, registry=r)
        self.inference = Histogram("te_request_inference_duration", "Inference time per input (s)",
                                   buckets=_SECONDS, registry=r)
        self.batch_size = Histogram("te_batch_next_size", "Inputs per batch", buckets=_SIZES, registry=r)
        self.batch_tokens = Histogram("te_batch_next_tokens", "Real tokens per batch", buckets=_TOKENS, registry=r)
        self.batch_duration = Histogram("te_batch_inference_duration", "Batch run time (s)", buckets=_SECONDS,
                                        registry=r)
        self.queue_size = Gauge("te_queue_size", "Inputs waiting for the inference worker", registry=r)
        self.queue_size.set_function(queue_size)

    def on_batch(self, stats: BatchStats) -> None:
        """The batcher's callback, in the worker thread (prometheus_client is thread-safe)."""
        self.batch_size.observe(stats.size)
        self.batch_tokens.observe(stats.tokens)
        self.batch_duration.observe(stats.seconds)

    def count(self, route: str, status: int, error_type: str | None) -> None:
        self.requests.labels(route, str(status)).inc()
        if status == 200:
            self.success.labels(route).inc()
        else:
            self.failure.labels(route, error_type or str(status)).inc()

    def text(self) -> bytes:
        return generate_latest(self.registry)
