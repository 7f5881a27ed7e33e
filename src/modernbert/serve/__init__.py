"""`modernbert serve`: an HTTP server with text-embeddings-inference's routes, OpenAI's embeddings and
token-budget batching.

    from modernbert.serve import Settings, create_app, load

    app = create_app(load("path/to/model"), Settings(max_batch_tokens=4096))   # then: uvicorn.run(app)

Layout: `served` (what a model folder serves, each task over its pipeline's `Pipeline.run`), `batcher` (the
inference worker that batches inputs of many requests by real tokens), `app` (the FastAPI routes), `fields`
(reading request fields), `errors` (TEI's and OpenAI's error JSON), `metrics` (Prometheus). FastAPI, uvicorn and
prometheus-client come with the `serve` extra: `pip install "modernbert[serve]"`.
"""

from __future__ import annotations

from typing import Any

INSTALL_HINT = 'pip install "modernbert[serve]"'
_NEEDED = ("fastapi", "uvicorn", "prometheus_client")


def missing_dependencies() -> list[str]:
    """The serve extra's packages that are not installed."""
    import importlib.util

    return [name for name in _NEEDED if importlib.util.find_spec(name) is None]


def __getattr__(name: str) -> Any:
    if name in ("Settings", "create_app"):
        missing = missing_dependencies()
        if missing:
            raise ImportError(f"modernbert serve needs {', '.join(missing)}: {INSTALL_HINT}")
        from . import app

        return getattr(app, name)
    if name == "load":
        from .served import load

        return load
    raise AttributeError(f"module 'modernbert.serve' has no attribute {name!r}")


__all__ = ["INSTALL_HINT", "Settings", "create_app", "load", "missing_dependencies"]
