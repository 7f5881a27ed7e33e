"""The ``modernbert`` command line.

The main path of every subcommand runs as a real subprocess (``python -m modernbert.cli``, and once the installed
``modernbert`` script) with ``HF_HUB_OFFLINE=1``: exit codes, stdout and a one-line stderr are checked as a user
sees them. Every subprocess imports torch (seconds), so the variants (tables, more bad inputs) call
``modernbert.cli.main(argv)`` in-process, which returns the same exit code and writes the same streams.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modernbert.cli import cell, format_table, gather_inputs, main

SCRIPT = Path(sys.executable).with_name("modernbert")
DEFAULT_MODEL = "answerdotai/ModernBERT-base"
TOKEN_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
CLASS_LABELS = {0: "negative", 1: "positive", 2: "neutral"}


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUTF8": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "2", **extra}
    env.pop("MODERNBERT_DEBUG", None)
    return env


class Result:
    """Exit code and output of one CLI run (a subprocess or an in-process ``main`` call)."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_cli(*args: Any, stdin: str = "", script: bool = False, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in a subprocess; stdin is ``stdin`` (empty by default, never the test's terminal)."""
    cmd = [str(SCRIPT)] if script else [sys.executable, "-m", "modernbert.cli"]
    r = subprocess.run(cmd + [str(a) for a in args], input=stdin, capture_output=True, text=True, encoding="utf-8",
                       env=env or _env(), timeout=300)
    return Result(r.returncode, r.stdout, r.stderr)


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run ``main(argv)`` in-process with ``stdin`` as standard input; returns a Result."""

    def run(*args: Any, stdin: str = "") -> Result:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def ok(result: Result) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result.stdout


def assert_error(result: Result, *fragments: str) -> str:
    """Exit code 2, nothing on stdout, exactly one ``error: ...`` line on stderr containing ``fragments``."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, f"exit {result.returncode}\nstderr: {result.stderr}"
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""
    return lines[0]


def jsonl(stdout: str) -> list[Any]:
    return [json.loads(line) for line in stdout.splitlines()]


def assert_close(got: Any, expected: Any, path: str = "") -> None:
    """Equal structures; floats equal to a relative 1e-4 (another process, same computation)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), (path, got, expected)
        for k in expected:
            assert_close(got[k], expected[k], f"{path}.{k}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(got, list) and len(got) == len(expected), (path, got, expected)
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_close(g, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-6), (path, got, expected)
    else:
        assert got == expected, (path, got, expected)


def in_process(task: str, folder: Path, *args: Any, **kwargs: Any) -> Any:
    """The pipeline's own output for these arguments, as JSON carries it."""
    from modernbert.pipelines import pipeline

    out = pipeline(task, model=str(folder))(*args, **kwargs)
    return json.loads(json.dumps(out, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


@pytest.fixture(scope="module")
def mlm(tiny_checkpoint) -> Path:
    return tiny_checkpoint("ModernBertForMaskedLM")


# ----- arguments and inputs -----


def test_help_and_bad_input_exit_2(cli, tmp_path: Path) -> None:
    """--help lists every subcommand; bad arguments, files and empty input exit 2 with one `error:` line."""
    out = ok(run_cli("--help"))
    for command in ("fill-mask", "classify", "ner", "qa", "embed", "info", "pretrain"):
        assert command in out
    assert_error(run_cli("fill-mask", "--dtype", "float64", "a [MASK]"), "float64", "--dtype")
    assert_error(run_cli("fill-mask", "--file", tmp_path / "missing.txt"), "no such file", "missing.txt")

    assert "--targets" in ok(cli("fill-mask", "--help"))
    assert "--aggregation" in ok(cli("ner", "--help"))
    assert "--question" in ok(cli("qa", "--help"))
    assert "--pooling" in ok(cli("embed", "--help"))
    assert_error(cli("fill-mask", "--batch-size", "0", "a [MASK]"), "batch-size")
    assert_error(cli("ner", "--aggregation", "median", "x"), "median")
    assert_error(cli("no-such-command"), "no-such-command")
    assert_error(cli("fill-mask", "--file", tmp_path), "folder")
    assert_error(cli("fill-mask"), "no input")  # stdin is empty
    assert_error(cli("ner", "-", stdin="\n  \n"), "no input")  # only blank lines
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"txt": "no text field"}\n')
    assert_error(cli("embed", "--file", bad), "bad.jsonl:2", "'text'")
    bad.write_text('{"text": "fine"}\n{not json\n')
    assert_error(cli("embed", "--file", bad), "bad.jsonl:2", "JSON")
    bad.write_bytes(b"\xff\xfe bad bytes\n")
    assert_error(cli("embed", "--file", bad), "UTF-8")
    assert_error(cli("qa", "only a question"), "--question")
    assert_error(cli("qa", "-q", "Who?", "-c", "Bob.", "extra text"), "--question")
    assert_error(cli("info", "--model", tmp_path / "no" / "such" / "folder"), "no such model folder")
    assert_error(cli("info", "--model", tmp_path), "config.json")  # a folder that is no checkpoint
    assert cli().returncode == 2  # no command: usage on stderr


def test_input_helpers(tmp_path: Path) -> None:
    """Arguments, '-' (stdin) and --file (plain and JSONL) combine in order; tables align."""
    path = tmp_path / "in.txt"
    path.write_text("first\n\nsecond\n", encoding="utf-8")
    records, from_stream = gather_inputs(["a", "-", "b"], str(path), stdin=io.StringIO('{"text": "s1"}\n"s2"\n'))
    assert [r.data for r in records] == ["a", "s1", "s2", "b", "first", "second"] and from_stream
    assert [r.where for r in records][-2:] == [f"{path}:1", f"{path}:3"]
    records, _ = gather_inputs([], None, optional=("text_pair",),
                               stdin=io.StringIO('{"text": "x", "text_pair": "y"}\n{"text": "z"}\n'), read_stdin=True)
    assert [r.data for r in records] == [{"text": "x", "text_pair": "y"}, "z"]
    assert cell("a\nb\tc") == "a⏎b c" and cell("x" * 100, 10) == "x" * 9 + "…"
    assert format_table(["a", "num"], [["xyz", "1"], ["日本", "22"]], right=(1,)).splitlines() == [
        "a     num", "xyz     1", "日本   22"]


# ----- model subcommands on the tiny checkpoints -----


def test_fill_mask(mlm: Path, tmp_path: Path, cli) -> None:
    """fill-mask: a table from the installed script; --json over a file equals the in-process pipeline."""
    assert SCRIPT.is_file(), f"console script not installed at {SCRIPT}"
    out = ok(run_cli("fill-mask", "--model", mlm, "--top-k", "3", "The capital of France is [MASK].",
                     "Paris is the [MASK] of France.", script=True))
    lines = out.splitlines()
    assert lines[0].split() == ["#", "rank", "score", "token", "sequence"]
    assert len(lines) == 1 + 2 * 3
    assert lines[1].split()[:2] == ["1", "1"] and lines[4].split()[:2] == ["2", "1"]
    assert lines[2].split()[0] == "2"  # rank 2 of input 1: the input number is not repeated
    assert all("[MASK]" not in line for line in lines[1:])

    texts = ["The capital of France is [MASK].", "Hello [MASK], how are you?", "[MASK] and [MASK] are capitals."]
    path = tmp_path / "texts.txt"
    path.write_text(f"{texts[0]}\n\n{texts[1]}\n{texts[2]}\n", encoding="utf-8")
    records = jsonl(ok(run_cli("fill-mask", "--model", mlm, "--file", path, "--json", "--top-k", "4")))
    assert [r["text"] for r in records] == texts  # blank line skipped, order kept
    expected = in_process("fill-mask", mlm, texts, top_k=4)
    for record, exp, text in zip(records, expected, texts):  # Pipeline.run: one list per mask, even for one mask
        assert_close(record["predictions"], exp if text.count("[MASK]") > 1 else [exp])
    assert set(records[0]["predictions"][0][0]) == {"score", "token", "token_str", "sequence"}
    assert len(records[0]["predictions"]) == 1 and len(records[0]["predictions"][0]) == 4
    assert len(records[2]["predictions"]) == 2 and len(records[2]["predictions"][0]) == 4  # one list per mask

    # in-process: the several-masks table, targets, the progress bar, a text without the mask token
    result = cli("fill-mask", "--model", mlm, "--file", path, "--progress", "-k", "2")
    assert ok(result).splitlines()[0].split() == ["#", "mask", "rank", "score", "token", "sequence"]
    assert "3/3" in result.stderr and "fill-mask" in result.stderr  # the pipelines' progress bar
    records = jsonl(ok(cli("fill-mask", "--model", mlm, "--json", "--targets", "Paris,London", texts[0])))
    assert_close(records[0]["predictions"], [in_process("fill-mask", mlm, texts[0], targets=["Paris", "London"])])
    assert_error(cli("fill-mask", "--model", mlm, "with [MASK]", "no mask here"), "[MASK]", "argument 2")
    assert_error(cli("fill-mask", "--model", mlm, "--device", "nonsense", "a [MASK]"), "--device")
    if not __import__("torch").cuda.is_available():
        assert_error(cli("fill-mask", "--model", mlm, "--device", "cuda", "a [MASK]"), "CUDA")


def test_classify_stdin_jsonl_pairs(tiny_checkpoint, cli) -> None:
    """classify reads JSONL (text + text_pair) from stdin; --json labels equal the in-process pipeline."""
    folder = tiny_checkpoint("ModernBertForSequenceClassification", id2label=CLASS_LABELS)
    rows = [{"text": "What a great film!"}, {"text": "Is it raining?", "text_pair": "The sun is out."},
            {"text": "Dull and long."}]
    stdin = "".join(json.dumps(r) + "\n" for r in rows)
    records = jsonl(ok(run_cli("classify", "--model", folder, "--json", "--top-k", "2", stdin=stdin)))
    assert [{k: v for k, v in r.items() if k != "labels"} for r in records] == rows
    expected = in_process("text-classification", folder, rows, top_k=2)
    for record, exp in zip(records, expected):
        assert_close(record["labels"], exp)
        assert {r["label"] for r in record["labels"]} <= set(CLASS_LABELS.values())

    lines = ok(cli("classify", "--model", folder, "-", "Last one.", stdin="First one.\n")).splitlines()
    assert lines[0].split() == ["#", "text", "label", "score"]
    assert lines[1].startswith("1  First one.") and lines[2].startswith("2  Last one.")


def test_ner(tiny_checkpoint, tmp_path: Path, cli) -> None:
    """ner with id2label: entity groups as the pipeline returns them; the table shows the labels."""
    folder = tiny_checkpoint("ModernBertForTokenClassification", id2label=TOKEN_LABELS)
    texts = ["Alice lives in Paris.", "Tokyo is the capital of Japan."]
    path = tmp_path / "ner.jsonl"
    path.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    records = jsonl(ok(run_cli("ner", "--model", folder, "--file", path, "--json", "--aggregation", "simple")))
    assert [r["text"] for r in records] == texts
    expected = in_process("token-classification", folder, texts, aggregation_strategy="simple")
    for record, exp in zip(records, expected):
        assert_close(record["entities"], exp)
        for entity in record["entities"]:
            assert {"entity_group", "score", "word", "start", "end"} <= set(entity)
            assert entity["entity_group"] in {"PER", "LOC"}

    lines = ok(cli("ner", "--model", folder, "--aggregation", "none", texts[0])).splitlines()
    assert lines[0].split() == ["#", "entity", "word", "score", "start", "end"]
    expected = in_process("token-classification", folder, texts[0], aggregation_strategy="none")
    assert len(lines) == 1 + max(1, len(expected))
    labels = [line.split()[1] for line in lines[1:2]] + [line.split()[0] for line in lines[2:]]
    assert labels == [e["entity"] for e in expected] or (not expected and labels == ["-"])


def test_qa(tiny_checkpoint, tmp_path: Path, cli) -> None:
    """qa: JSONL question/context records and --question/--context; answers equal the pipeline's."""
    folder = tiny_checkpoint("ModernBertForQuestionAnswering")
    pairs = [{"question": "Where is the Eiffel tower?", "context": "The Eiffel tower is in Paris, France."},
             {"question": "Who wrote it?", "context": "The old man and the sea is a short novel by Hemingway."}]
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    records = jsonl(ok(run_cli("qa", "--model", folder, "--file", path, "--json", "--top-k", "2")))
    assert [{"question": r["question"], "context": r["context"]} for r in records] == pairs
    for record, pair in zip(records, pairs):
        expected = in_process("question-answering", folder, question=pair["question"], context=pair["context"],
                              top_k=2)
        assert_close(record["answer"], expected)
        for answer in record["answer"]:
            assert set(answer) == {"score", "start", "end", "answer"}
            assert pair["context"][answer["start"]:answer["end"]] == answer["answer"]

    q, c = pairs[0]["question"], pairs[0]["context"]
    lines = ok(cli("qa", "--model", folder, "--question", q, "--context", c)).splitlines()
    assert lines[0].split() == ["#", "question", "answer", "score", "start", "end"] and len(lines) == 2
    expected = in_process("question-answering", folder, question=q, context=c)
    assert lines[1].split()[-2:] == [str(expected["start"]), str(expected["end"])]
    # --context with questions as texts: one answer per question
    records = jsonl(ok(cli("qa", "--model", folder, "--context", c, "--json", q, "What is it?")))
    assert [r["question"] for r in records] == [q, "What is it?"]
    assert_close(records[0]["answer"], [expected])  # Pipeline.run: a list of answers, even for top_k=1


def test_embed(tiny_checkpoint, cli) -> None:
    """embed on a ModernBertModel checkpoint: normalized vectors equal to the in-process SentenceEncoder."""
    from modernbert.pipelines import SentenceEncoder

    folder = tiny_checkpoint("ModernBertModel")
    texts = ["The capital of France is Paris.", "Hello, world!"]
    records = jsonl(ok(run_cli("embed", "--model", folder, "--json", "--normalize", *texts)))
    assert [r["text"] for r in records] == texts
    expected = SentenceEncoder.from_pretrained(str(folder)).encode(texts, normalize_embeddings=True).tolist()
    for record, exp in zip(records, expected):
        assert len(record["embedding"]) == 32
        assert math.isclose(math.fsum(v * v for v in record["embedding"]), 1.0, rel_tol=1e-5)
        assert_close(record["embedding"], exp)

    lines = ok(cli("embed", "--model", folder, "--pooling", "cls", texts[0])).splitlines()
    assert lines[0].split() == ["#", "text", "dim", "norm", "embedding"] and len(lines) == 2
    vector = SentenceEncoder.from_pretrained(str(folder), pooling="cls").encode(texts[0])
    assert f"{math.sqrt(float((vector ** 2).sum())):.4f}" in lines[1] and " 32 " in lines[1]


def test_info(mlm: Path, cli) -> None:
    """info: parameter count, dtype and the G/L layer pattern, as JSON and as a table."""
    from modernbert.model import ModernBertForMaskedLM

    n = ModernBertForMaskedLM.from_pretrained(str(mlm)).num_parameters()
    info = json.loads(ok(run_cli("info", mlm, "--json")))
    assert info["num_parameters"] == n
    assert info["architecture"] == "ModernBertForMaskedLM"
    assert info["dtype"] == "float32"
    assert info["layer_pattern"] == "G L L G"  # 4 layers, global every 3rd
    assert info["local_attention"] == 8
    assert info["config"]["hidden_size"] == 32 and info["config"]["num_hidden_layers"] == 4

    out = ok(cli("info", "--model", mlm))
    assert f"{n:,}" in out and "G L L G" in out and "window 8" in out
    assert "float32" in out and "hidden_size" in out


def test_default_model_offline_not_cached(tmp_path: Path) -> None:
    """The default hub model, offline and not in the (empty) cache: exit 2, one line naming modernbert-tiny."""
    env = _env(HF_HOME=str(tmp_path / "hf"), HF_HUB_CACHE=str(tmp_path / "hf" / "hub"))
    line = assert_error(run_cli("fill-mask", "The capital of France is [MASK].", env=env),
                        DEFAULT_MODEL, "--model modernbert-tiny")
    assert "offline" in line


def test_bundled_model(cli) -> None:
    """fill-mask and info on the bundled modernbert-tiny, which needs no network."""
    from modernbert.hub import bundled_models

    if "modernbert-tiny" not in bundled_models():
        pytest.skip("the bundled modernbert-tiny model is not in src/modernbert/bundled/ (yet)")
    records = jsonl(ok(run_cli("fill-mask", "--model", "modernbert-tiny", "--json", "--top-k", "3",
                               "The capital of France is [MASK].")))
    assert len(records) == 1 and len(records[0]["predictions"]) == 1 and len(records[0]["predictions"][0]) == 3
    assert all("[MASK]" not in p["sequence"] for p in records[0]["predictions"][0])
    info = json.loads(ok(cli("info", "modernbert-tiny", "--json")))
    assert info["num_parameters"] > 0 and set(info["layer_pattern"].split()) <= {"G", "L"}


# ----- pretrain -----


def test_pretrain(tmp_path: Path, cli) -> None:
    """pretrain --help shows the training flags; a few steps on a tiny corpus export a model fill-mask runs on."""
    from tokenizer_fixture import TRAINING_TEXT, write_tokenizer

    out = ok(cli("pretrain", "--help"))
    assert "modernbert pretrain" in out and "--train-data" in out and "--steps" in out
    assert_error(cli("pretrain", "--steps", "many"), "--steps")
    assert_error(cli("pretrain", "--train-data", tmp_path / "missing.jsonl"), "missing.jsonl")

    write_tokenizer(tmp_path / "tok", vocab_size=512)
    corpus = tmp_path / "train.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in TRAINING_TEXT * 3), encoding="utf-8")
    run_dir = tmp_path / "run"
    summary = json.loads(ok(run_cli(
        "pretrain", "--train-data", corpus, "--heldout-data", "none", "--tokenizer", tmp_path / "tok",
        "--out-dir", run_dir, "--hidden-size", "32", "--num-layers", "2", "--num-heads", "2",
        "--intermediate-size", "48", "--local-attention", "8", "--max-position-embeddings", "64",
        "--seq-len", "32", "--batch-tokens", "128", "--steps", "3", "--eval-every", "0", "--save-every", "0",
        "--log-every", "1", "--quiet", "--num-threads", "1",
    )))
    assert summary["step"] == 3
    assert (run_dir / "final" / "config.json").is_file() and (run_dir / "final" / "tokenizer.json").is_file()

    # the exported model works with the other subcommands
    records = jsonl(ok(cli("fill-mask", "--model", run_dir / "final", "--json", "The [MASK] end.")))
    assert len(records[0]["predictions"]) == 1 and len(records[0]["predictions"][0]) == 5
