"""The command line's defects of issue 12, one test each, and what ``modernbert --help`` may import.

Most runs are in-process (`main(argv)`, the `cli` fixture of test_cli); the import checks need a fresh interpreter.
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
import test_cli
import torch
from test_cli import TOKEN_LABELS, _env, assert_close, assert_error, in_process, ok
from test_embeddings import reference_embeddings, write_st_folder

from modernbert.cli import build_parser, cell, gather_inputs
from modernbert.cli.commands import COMMANDS
from modernbert.hub import DTYPE_ALIASES, TOKENIZER_FILES, WEIGHT_NAMES

CHECKPOINT_FILES = ("config.json", "model.safetensors")
cli = test_cli.cli  # the in-process `main(argv)` fixture


def jsonl(stdout: str) -> list:
    """The JSON lines of stdout, cut at \\n only (a JSON line may hold a raw U+2028)."""
    return [json.loads(line) for line in stdout.split("\n") if line]


def copy_checkpoint(folder: Path, to: Path, *, tokenizer: bool = True, max_tokens: int | None = None) -> Path:
    """A copy of a tiny checkpoint folder; without its tokenizer, or with a smaller model_max_length."""
    to.mkdir(parents=True, exist_ok=True)
    for name in CHECKPOINT_FILES + (TOKENIZER_FILES if tokenizer else ()):
        shutil.copy(folder / name, to / name)
    if max_tokens is not None:
        config = json.loads((to / "tokenizer_config.json").read_text())
        config["model_max_length"] = max_tokens
        (to / "tokenizer_config.json").write_text(json.dumps(config))
    return to


# ----- imports -----


def test_help_imports_no_torch() -> None:
    """`modernbert --help` and `modernbert SUB --help` (every subcommand the CLI parses) import no torch."""
    subcommands = [name for name, module in COMMANDS.items() if not getattr(module, "OWN_PARSER", False)]
    code = (
        "import sys, contextlib, io\n"
        "from modernbert.cli import main\n"
        f"for argv in [['--help'], ['--version'], *[[c, '--help'] for c in {subcommands!r}]]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "        assert main(argv) == 0, argv\n"
        "    assert out.getvalue(), argv\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout
    assert set(subcommands) >= {"fill-mask", "classify", "ner", "qa", "embed", "info"}


# ----- input lines -----


def test_lines_end_at_newline_only(tmp_path: Path) -> None:
    """Only \\n ends a line: U+2028, U+0085 stay inside a JSONL string; they and a form feed inside a text line."""
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "one\u2028two"}\r\n{"text": "three\u0085four\u2029five"}\n', encoding="utf-8")
    records, _ = gather_inputs([], str(path))
    assert [r.data for r in records] == ["one\u2028two", "three\u0085four\u2029five"]
    assert [r.where for r in records] == [f"{path}:1", f"{path}:2"]

    path = tmp_path / "in.txt"
    path.write_text("a\u000cb\r\nc\u2028d\u2029e\u001cf\n\nlast", encoding="utf-8")
    records, _ = gather_inputs([], str(path))
    assert [r.data for r in records] == ["a\u000cb", "c\u2028d\u2029e\u001cf", "last"]
    records, _ = gather_inputs([], None, stdin=io.StringIO("x\u0085y\nz\r\n"), read_stdin=True)
    assert [r.data for r in records] == ["x\u0085y", "z"]


def test_lines_end_at_newline_only_in_a_run(tiny_checkpoint, tmp_path: Path, cli) -> None:
    """A JSONL record with a raw U+2028 is one input of `embed`, embedded as the text it holds."""
    folder = tiny_checkpoint("ModernBertModel")
    texts = ["first\u2028line", "form\u000cfeed"]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    records = jsonl(ok(cli("embed", "--model", folder, "--file", path, "--json")))
    assert [r["text"] for r in records] == texts
    from modernbert.pipelines import SentenceEncoder

    expected = SentenceEncoder.from_pretrained(str(folder)).encode(texts).tolist()
    for record, exp in zip(records, expected):
        assert_close(record["embedding"], exp)


# ----- table cells -----


def _naive_cell(value: str, width: int) -> str:
    """The cell of the first command line, quadratic in the text's length: the reference on short texts."""
    def w(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1
                   for c in text)

    text = value.replace("\r\n", "\n").translate({ord("\n"): "⏎", ord("\t"): " ", ord("\r"): "⏎"})
    text = "".join(c if unicodedata.category(c) != "Cc" else "�" for c in text)
    if w(text) > width:
        while w(text) > width - 1:
            text = text[:-1]
        text += "…"
    return text


def test_cell_is_linear(monkeypatch) -> None:
    """cell() looks at a bounded number of characters of a long text, and cuts as the quadratic version did."""
    import modernbert.cli.output as output

    calls = 0
    width_of = output.char_width

    def counting(c: str) -> int:
        nonlocal calls
        calls += 1
        return width_of(c)

    monkeypatch.setattr(output, "char_width", counting)
    assert cell("x" * 200_000) == "x" * 59 + "…"
    assert calls <= 61  # the old loop measured the whole remaining text once per character it cut
    calls = 0
    assert cell("日本" * 100_000, 10) == "日本日本…"
    assert calls <= 7
    monkeypatch.undo()

    rng = random.Random(0)
    alphabet = ["a", "b", " ", "日", "\u0301", "\n", "\r", "\t", "\x07", "\u2028", "é", "🙂"]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        width = rng.randint(1, 20)
        assert cell(text, width) == _naive_cell(text, width), (text, width)


# ----- embed --no-normalize -----


def test_no_normalize_overrides_the_folder(tiny_checkpoint, tmp_path: Path, cli) -> None:
    """On a sentence-transformers folder with Normalize: unit vectors by default, raw mean pooling with
    --no-normalize (sentence-transformers' formula without its Normalize module)."""
    base = tiny_checkpoint("ModernBertModel")
    folder = write_st_folder(base, tmp_path / "st", normalize=True, max_seq_length=64)
    texts = ["The capital of France is Paris.", "Hello, world!"]
    unit = jsonl(ok(cli("embed", "--model", folder, "--json", *texts)))
    raw = jsonl(ok(cli("embed", "--model", folder, "--json", "--no-normalize", *texts)))
    expected_unit = reference_embeddings(folder, texts, pooling="mean", normalize=True, max_seq_length=64)
    expected_raw = reference_embeddings(folder, texts, pooling="mean", normalize=False, max_seq_length=64)
    for u, r, eu, er in zip(unit, raw, expected_unit.tolist(), expected_raw.tolist()):
        assert math.isclose(math.fsum(v * v for v in u["embedding"]), 1.0, rel_tol=1e-5)
        assert not math.isclose(math.fsum(v * v for v in r["embedding"]), 1.0, rel_tol=1e-2)
        assert max(abs(a - b) for a, b in zip(u["embedding"], eu)) < 1e-4
        assert max(abs(a - b) for a, b in zip(r["embedding"], er)) < 1e-4
    assert "--no-normalize" in ok(cli("embed", "--help"))


# ----- long texts: ner --stride, --truncate -----


@pytest.fixture(scope="module")
def long_text() -> str:
    return "Alice lives in Paris and Bob works in Tokyo. " * 40


def test_ner_stride_reads_all_of_a_long_text(tiny_checkpoint, tmp_path: Path, long_text: str, cli) -> None:
    """ner on a text over the model's maximum: a warning naming --stride / --truncate and only the start read;
    with --stride N, entities up to the end, as the pipeline's windows find them."""
    folder = copy_checkpoint(tiny_checkpoint("ModernBertForTokenClassification", id2label=TOKEN_LABELS),
                             tmp_path / "ner", max_tokens=64)
    result = cli("ner", "--model", folder, "--json", long_text)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "argument 1" in warnings[0], result.stderr
    assert "--stride" in warnings[0] and "--truncate" in warnings[0] and "64" in warnings[0]
    cut = jsonl(ok(result))[0]["entities"]
    assert cut and max(e["end"] for e in cut) < len(long_text) // 4

    result = cli("ner", "--model", folder, "--json", "--stride", "16", long_text)
    assert "warning" not in result.stderr
    whole = jsonl(ok(result))[0]["entities"]
    assert_close(whole, in_process("token-classification", folder, long_text, aggregation_strategy="simple",
                                   stride=16))
    assert max(e["end"] for e in whole) > len(long_text) * 0.9

    result = cli("ner", "--model", folder, "--json", "--truncate", long_text)
    assert "warning" not in result.stderr and jsonl(ok(result))[0]["entities"] == cut
    assert_error(cli("ner", "--model", folder, "--stride", "16", "--aggregation", "none", "x"), "--aggregation")
    assert_error(cli("ner", "--model", folder, "--stride", "62", long_text), "--stride 62", "window")
    assert_error(cli("ner", "--model", folder, "--stride", "-1", "x"), "--stride")


def test_truncate_flag(tiny_checkpoint, tmp_path: Path, long_text: str, cli) -> None:
    """classify and fill-mask: an input over the maximum is an error naming --truncate; with it, the pipeline's
    truncated result. A mask that truncation would cut off is an error."""
    folder = copy_checkpoint(tiny_checkpoint("ModernBertForSequenceClassification", id2label={0: "no", 1: "yes"}),
                             tmp_path / "cls", max_tokens=32)
    line = assert_error(cli("classify", "--model", folder, "short", long_text), "argument 2", "--truncate", "32")
    assert "truncation=True" not in line
    labels = jsonl(ok(cli("classify", "--model", folder, "--json", "--truncate", long_text)))[0]["labels"]
    assert_close(labels, in_process("text-classification", folder, long_text, top_k=1, truncation=True,
                                    max_length=32))

    mlm = copy_checkpoint(tiny_checkpoint("ModernBertForMaskedLM"), tmp_path / "mlm", max_tokens=32)
    early, late = "[MASK] " + long_text, long_text + " [MASK]"
    assert_error(cli("fill-mask", "--model", mlm, early), "argument 1", "--truncate")
    predictions = jsonl(ok(cli("fill-mask", "--model", mlm, "--json", "--truncate", early)))[0]["predictions"]
    expected = in_process("fill-mask", mlm, early, tokenizer_kwargs={"truncation": True, "max_length": 32})
    assert_close(predictions, [expected])
    assert_error(cli("fill-mask", "--model", mlm, "--truncate", late), "argument 1", "[MASK]", "cuts it off")


# ----- qa --question with --file -----


def test_qa_question_with_a_jsonl_file(tiny_checkpoint, tmp_path: Path, cli) -> None:
    """--question applies to JSONL records that hold only a context; a record with its own question is an error."""
    folder = tiny_checkpoint("ModernBertForQuestionAnswering")
    q = "Where is the tower?"
    contexts = ["The Eiffel tower is in Paris.", "The tower of Pisa leans."]
    path = tmp_path / "contexts.jsonl"
    path.write_text("".join(json.dumps({"context": c}) + "\n" for c in contexts), encoding="utf-8")
    records = jsonl(ok(cli("qa", "--model", folder, "--json", "--question", q, "--file", path)))
    assert [(r["question"], r["context"]) for r in records] == [(q, c) for c in contexts]
    for record, c in zip(records, contexts):
        assert_close(record["answer"], [in_process("question-answering", folder, question=q, context=c)])

    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({"question": q}) + "\n", encoding="utf-8")
    records = jsonl(ok(cli("qa", "--model", folder, "--json", "--context", contexts[0], "--file", questions)))
    assert (records[0]["question"], records[0]["context"]) == (q, contexts[0])

    path.write_text(json.dumps({"question": "Who?", "context": contexts[0]}) + "\n", encoding="utf-8")
    assert_error(cli("qa", "--model", folder, "--question", q, "--file", path), f"{path}:1", "--question")
    assert "a record with its own 'question' is then an error" in " ".join(ok(cli("qa", "--help")).split())


# ----- devices and dtypes -----


def test_device_default_is_what_help_says(tiny_checkpoint, cli) -> None:
    """--device's help says CUDA when available, else the CPU; that is where the model goes."""
    from modernbert.cli.models import load_pipeline

    help_text = " ".join(ok(cli("fill-mask", "--help")).split())
    assert "(default: cuda when available, else cpu)" in help_text and "(default: cpu)" not in help_text
    args = build_parser().parse_args(["fill-mask", "--model", str(tiny_checkpoint("ModernBertForMaskedLM")), "x"])
    pipe = load_pipeline("fill-mask", args)
    assert pipe.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        folder = tiny_checkpoint("ModernBertModel")
        assert_error(cli("embed", "--model", folder, "--device", "cuda:0", "x"), "CUDA", "--device cpu")


def test_dtype_aliases(tiny_checkpoint, cli) -> None:
    """--dtype takes every spelling of modernbert.hub.DTYPE_ALIASES, and auto; fp16 loads float16 weights."""
    from modernbert.cli.models import load_pipeline

    mlm = tiny_checkpoint("ModernBertForMaskedLM")
    parser = build_parser()
    for alias in ("auto", *DTYPE_ALIASES):
        assert parser.parse_args(["fill-mask", "--dtype", alias, "x"]).dtype == alias
    pipe = load_pipeline("fill-mask", parser.parse_args(["fill-mask", "--model", str(mlm), "--dtype", "fp16", "x"]))
    assert pipe.model.dtype == torch.float16
    records = jsonl(ok(cli("fill-mask", "--model", mlm, "--dtype", "bf16", "--json", "a [MASK] b")))
    assert len(records[0]["predictions"][0]) == 5
    assert_error(cli("fill-mask", "--model", mlm, "--dtype", "int8", "a [MASK]"), "--dtype", "int8")


# ----- empty inputs -----


def test_empty_texts_are_errors(tiny_checkpoint, tmp_path: Path, cli) -> None:
    """classify, ner, embed (and fill-mask) name an empty or blank input instead of running on it."""
    folder = tiny_checkpoint("ModernBertModel")
    assert_error(cli("classify", "--model", folder, ""), "argument 1", "empty")
    assert_error(cli("ner", "--model", folder, "fine", "   "), "argument 2", "empty", "whitespace")
    assert_error(cli("embed", "--model", folder, "x", ""), "argument 2", "empty")
    assert_error(cli("fill-mask", "--model", folder, ""), "argument 1", "empty")
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "fine"}\n{"text": ""}\n', encoding="utf-8")
    assert_error(cli("embed", "--model", folder, "--file", path), f"{path}:2", "empty")
    path.write_text('{"text": "fine", "text_pair": " "}\n', encoding="utf-8")
    assert_error(cli("classify", "--model", folder, "--file", path), f"{path}:1", "text_pair", "empty")
    path.write_text('{"question": "Who?", "context": ""}\n', encoding="utf-8")
    assert_error(cli("qa", "--model", folder, "--file", path), f"{path}:1", "context", "empty")


# ----- folders: no weights, no tokenizer -----


def test_info_without_weights(tiny_checkpoint, tmp_path: Path, cli) -> None:
    """info on a folder with a config but no weights: exit 2 naming the weight files it looked for."""
    folder = tmp_path / "config-only"
    folder.mkdir()
    shutil.copy(tiny_checkpoint("ModernBertForMaskedLM") / "config.json", folder / "config.json")
    line = assert_error(cli("info", folder), "no weights", str(folder))
    assert all(name in line for name in WEIGHT_NAMES)


def test_missing_tokenizer_gives_a_cli_fix(tiny_checkpoint, tmp_path: Path, cli) -> None:
    """A model folder without a tokenizer: exit 2 naming --tokenizer (not tokenizer=...); --tokenizer works."""
    mlm = tiny_checkpoint("ModernBertForMaskedLM")
    bare = copy_checkpoint(mlm, tmp_path / "bare", tokenizer=False)
    text = "The capital of France is [MASK]."
    line = assert_error(cli("fill-mask", "--model", bare, text), "--tokenizer", "tokenizer.json", str(bare))
    assert "tokenizer=" not in line and "save_pretrained" not in line
    assert_error(cli("embed", "--model", bare, "x"), "--tokenizer")
    got = jsonl(ok(cli("fill-mask", "--model", bare, "--tokenizer", mlm, "--json", text)))
    assert_close(got, jsonl(ok(cli("fill-mask", "--model", mlm, "--json", text))))
    assert_error(cli("fill-mask", "--model", mlm, "--tokenizer", tmp_path / "no" / "such", text),
                 "no such tokenizer folder")
    assert_error(cli("fill-mask", "--model", mlm, "--tokenizer", bare, text), "--tokenizer", "tokenizer.json")


# ----- pretrain --help -----


def test_pretrain_help_says_each_default_once(cli) -> None:
    """pretrain --help: the training parser's texts, each default once (no second formatter adding them)."""
    text = " ".join(ok(cli("pretrain", "--help")).split())
    assert "modernbert pretrain" in text and "--train-data" in text
    assert "(default:" in text
    assert not re.search(r"\(default: [^)]*\)\s*\(default:", text), text
