"""Real servers for the serve tests: `modernbert serve` in subprocesses on free loopback ports.

Every server of the session starts at once, in parallel, the first time a test needs one (`farm`); each
fixture then waits for its own to answer /health. The folders are the suite's tiny checkpoints (and the
bundled modernbert-tiny), so the tests compare every answer with the pipelines run offline on the same folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .serve_helpers import API_KEY, Server, write_st_folder


@pytest.fixture(scope="session")
def folders(tiny_checkpoint, tmp_path_factory) -> dict[str, Path]:
    st = write_st_folder(tiny_checkpoint("ModernBertModel"), tmp_path_factory.mktemp("st") / "model")
    return {
        "embed": st,
        "reranker": tiny_checkpoint("ModernBertForSequenceClassification", num_labels=1),
        "ner": tiny_checkpoint("ModernBertForTokenClassification", num_labels=5),
        "qa": tiny_checkpoint("ModernBertForQuestionAnswering"),
    }


@pytest.fixture(scope="session")
def farm(folders, tmp_path_factory):
    """Every server of the session, started together."""
    logs = tmp_path_factory.mktemp("serve-logs")
    servers = {
        "embed": Server(folders["embed"], "--max-batch-tokens", "200", "--payload-limit", "100000",
                        log=logs / "embed.log"),
        "reranker": Server(folders["reranker"], "--api-key", API_KEY, "--max-concurrent-requests", "4",
                           log=logs / "reranker.log"),
        "mlm": Server("modernbert-tiny", "--json-logs", log=logs / "mlm.log"),
        "ner": Server(folders["ner"], log=logs / "ner.log"),
        "qa": Server(folders["qa"], log=logs / "qa.log"),
    }
    yield servers
    for server in servers.values():
        server.terminate()
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def embed_server(farm) -> Server:
    return farm["embed"].ready()


@pytest.fixture(scope="session")
def reranker_server(farm) -> Server:
    return farm["reranker"].ready()


@pytest.fixture(scope="session")
def mlm_server(farm) -> Server:
    return farm["mlm"].ready()


@pytest.fixture(scope="session")
def ner_server(farm) -> Server:
    return farm["ner"].ready()


@pytest.fixture(scope="session")
def qa_server(farm) -> Server:
    return farm["qa"].ready()
