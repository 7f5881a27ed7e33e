"""`modernbert finetune text-classification` and `modernbert.training.finetune`: data, packing, training, resume,
the output folder (loaded by transformers), and the one-line errors of bad inputs."""

from __future__ import annotations

import csv
import json
import math
import random
import warnings
from pathlib import Path

import pytest
import torch
from fault_injection import TIMING_KEYS, KillAt, read_log, run_child

from modernbert.cli import main
from modernbert.training import finetune_data as fd
from modernbert.training.finetune import FinetuneConfig, finetune, lr_factor, param_groups

WORDS = ["the", "capital", "of", "France", "is", "Paris", "quick", "brown", "fox", "lazy", "dog", "weather",
         "London", "rainy", "birds", "winter", "coffee", "tea", "park", "sunset", "library", "pages"]
FINETUNE = "modernbert.training.finetune:finetune"


def _example(rng: random.Random, positive: bool) -> str:
    words = [rng.choice(WORDS[6:]) for _ in range(rng.randint(3, 14))]
    if positive:
        words.insert(rng.randrange(len(words) + 1), "Paris")
    return " ".join(words)


def rows(n: int, seed: int = 0) -> list[dict]:
    """Texts labelled `yes` when they hold "Paris", `no` otherwise, half each."""
    rng = random.Random(seed)
    return [{"text": _example(rng, i % 2 == 0), "label": "yes" if i % 2 == 0 else "no"} for i in range(n)]


def write_csv(path: Path, data: list[dict], delimiter: str = ",") -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(data[0]), delimiter=delimiter)
        w.writeheader()
        w.writerows(data)
    return path


def write_jsonl(path: Path, data: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in data))
    return path


@pytest.fixture(scope="module")
def base(tiny_checkpoint) -> Path:
    return tiny_checkpoint("ModernBertForMaskedLM", num_hidden_layers=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("finetune-data")
    return {"train": write_csv(root / "train.csv", rows(48)), "validation": write_csv(root / "dev.csv", rows(16, 1)),
            "test": write_csv(root / "test.csv", [{"text": r["text"]} for r in rows(6, 2)])}


def options(base: Path, data: dict[str, Path], out: Path, **overrides) -> dict:
    opts = dict(model=str(base), train=str(data["train"]), validation=str(data["validation"]), output=str(out),
                learning_rate=3e-3, warmup=0.1, batch_tokens=160, epochs=3, log_every=1, num_threads=1, quiet=True)
    opts.update(overrides)
    return opts


# ----- data -----


def test_reads_every_format_the_same(tmp_path):
    data = rows(5)
    csv_rows = fd.read_rows(write_csv(tmp_path / "a.csv", data))
    tsv_rows = fd.read_rows(write_csv(tmp_path / "a.tsv", data, "\t"))
    jsonl_rows = fd.read_rows(write_jsonl(tmp_path / "a.jsonl", data))
    (tmp_path / "a.json").write_text(json.dumps({"data": data}))
    json_rows = fd.read_rows(tmp_path / "a.json")
    py_rows = fd.read_rows(data, "train data")
    for r in (csv_rows, tsv_rows, jsonl_rows, json_rows, py_rows):
        assert r.rows == data and r.columns == ["text", "label"]
    assert [s.line for s in csv_rows.sources] == [2, 3, 4, 5, 6]
    assert [s.line for s in jsonl_rows.sources] == [1, 2, 3, 4, 5]
    assert json_rows.sources[2].where("label") == f"{tmp_path / 'a.json'}, record 3, column 'label'"


def test_reads_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    data = rows(4)
    pq.write_table(pa.Table.from_pylist(data), tmp_path / "a.parquet")
    r = fd.read_rows(tmp_path / "a.parquet")
    assert r.rows == data and r.sources[1].where() == f"{tmp_path / 'a.parquet'}, record 2"


def test_columns_default_as_run_glue():
    def cols(columns, **kw):
        r = fd.read_rows([dict.fromkeys(columns, "x")])
        return fd.text_columns(r, kw.pop("label", "label"), kw.get("text"), kw.get("pair"))

    assert cols(["idx", "sentence1", "sentence2", "label"]) == ("sentence1", "sentence2")
    assert cols(["question", "label", "sentence"]) == ("question", "sentence")  # the first two non-label columns
    assert cols(["text", "label"]) == ("text", None)
    assert cols(["label", "review"]) == ("review", None)
    assert cols(["a", "b", "label"], text="b") == ("b", None)


def test_label_kinds_inferred_as_run_glue():
    def infer(labels, problem_type=None):
        r = fd.read_rows([{"text": "x", "label": v} for v in labels])
        return fd.LabelSpace.infer(r, "label", problem_type)

    assert infer(["pos", "neg", "pos"]).names == ["neg", "pos"]
    assert infer(["10", "2", "1"]).names == ["1", "2", "10"]  # integer classes, in numeric order
    assert infer([3, 1, 2]).problem_type == "single_label_classification"
    space = infer(["0.5", "4.0", "1"])  # a CSV column with decimals: a regression
    assert (space.problem_type, space.num_labels) == ("regression", 1)
    multi = infer([["b", "a"], ["c"], []])
    assert (multi.problem_type, multi.names) == ("multi_label_classification", ["a", "b", "c"])
    r = fd.read_rows([{"text": "x", "label": v} for v in (["b", "a"], ["c"])])
    assert multi.encode(r, "label", "training").tolist() == [[1, 1, 0], [0, 0, 1]]
    forced = infer(["1.5", "2.5"], "single_label_classification")
    assert forced.names == ["1.5", "2.5"]
    assert infer(["a,b", "c"], "multi_label_classification").names == ["a", "b", "c"]  # CSV: comma-separated


def test_packing_budget_length_grouping_and_determinism():
    rng = random.Random(0)
    lengths = [rng.randint(3, 60) for _ in range(400)]
    plan = fd.PackPlan(lengths, batch_tokens=256, batch_size=None, seed=7)
    for epoch in range(2):
        batches = plan.epoch(epoch)
        seen = sorted(i for b in batches for i in b)
        assert seen == list(range(len(lengths)))  # every example once per epoch
        assert all(sum(lengths[i] for i in b) <= 256 for b in batches)
        # Grouped by length: within a batch the spread is far below the data's.
        spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
        assert spread < 0.25 * (max(lengths) - min(lengths))
    assert plan.epoch(0) != plan.epoch(1)
    assert fd.PackPlan(lengths, 256, None, seed=7).epoch(1) == plan.epoch(1)
    assert fd.PackPlan(lengths, 256, None, seed=8).epoch(1) != plan.epoch(1)
    capped = fd.PackPlan(lengths, 10_000, batch_size=5, seed=0).epoch(0)
    assert max(len(b) for b in capped) == 5
    packed = fd.pack([[1, 2, 3], [4, 5], [6]], [2, 0])
    assert packed.input_ids.tolist() == [6, 1, 2, 3] and packed.cu_seqlens.tolist() == [0, 1, 4]
    assert packed.max_seqlen == 3


# ----- schedule and optimizer -----


def test_schedules():
    total, warmup = 100, 10
    assert [lr_factor(s, total, warmup, "linear") for s in (0, 9)] == [0.1, 1.0]
    assert lr_factor(55, total, warmup, "linear") == pytest.approx(0.5)
    assert lr_factor(55, total, warmup, "cosine") == pytest.approx(0.5)
    assert lr_factor(32, total, warmup, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 22 / 90)))
    assert lr_factor(99, total, warmup, "constant") == 1.0
    assert lr_factor(89, total, warmup, "wsd", decay=0.1) == 1.0
    assert lr_factor(95, total, warmup, "wsd", decay=0.1) == pytest.approx(0.5)
    assert lr_factor(0, total, 0, "linear") == 1.0


def test_no_weight_decay_on_norms_biases_embeddings(base):
    from modernbert import ModernBertForSequenceClassification

    model = ModernBertForSequenceClassification.from_pretrained(str(base), num_labels=2)
    decay, no_decay = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 and "norm" not in names[id(p)] and "embeddings" not in names[id(p)]
               for p in decay["params"])
    assert any("embeddings" in names[id(p)] for p in no_decay["params"])
    assert any(names[id(p)].endswith("bias") for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


# ----- training and the output folder -----


def test_trains_exports_and_transformers_agrees(base, data, tmp_path):
    out = tmp_path / "run"
    m = finetune(FinetuneConfig(task="text-classification", test=str(data["test"]), eval_every=10,
                                **options(base, data, out, batch_tokens=400, epochs=12)))
    assert m["completed"] and m["step"] == m["total_steps"] > 40
    losses = m["train_losses"]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    evals = [e["eval_loss"] for e in m["evals"]]
    assert min(evals) < evals[0]
    for key in ("eval_loss", "eval_accuracy", "eval_f1", "eval_matthews_correlation"):
        assert key in m
    assert m["best_step"] == m["evals"][evals.index(min(evals))]["step"]  # eval_loss: lower is better

    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "no", "1": "yes"} and config["label2id"] == {"no": 0, "yes": 1}
    assert config["problem_type"] == "single_label_classification"
    assert config["architectures"] == ["ModernBertForSequenceClassification"]
    for name in ("tokenizer.json", "tokenizer_config.json", "metrics.json", "trainer_log.jsonl", "README.md",
                 "test_predictions.jsonl", "model.safetensors"):
        assert (out / name).is_file(), name
    assert json.loads((out / "metrics.json").read_text())["eval_accuracy"] == m["eval_accuracy"]
    assert "eval_accuracy" in (out / "README.md").read_text()
    preds = [json.loads(x) for x in (out / "test_predictions.jsonl").read_text().splitlines()]
    assert [p["index"] for p in preds] == list(range(6)) and {p["prediction"] for p in preds} <= {"no", "yes"}
    log = read_log(out / "trainer_log.jsonl")
    assert [r["step"] for r in log if "loss" in r] == list(range(1, m["step"] + 1))
    assert [r["step"] for r in log if "eval_loss" in r] == [e["step"] for e in m["evals"]]

    # The export is the best model: its validation metrics are the ones reported.
    import transformers

    from modernbert import AutoTokenizer, ModernBertForSequenceClassification

    ours = ModernBertForSequenceClassification.from_pretrained(str(out)).eval()
    tok = AutoTokenizer.from_pretrained(str(out))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = transformers.AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    texts = [r["text"] for r in rows(5, 3)]
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        a = ours(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        b = ref(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert ref.config.id2label == {0: "no", 1: "yes"}
    # The pipeline (and so `modernbert classify`) takes the folder as it is, with its label names.
    from modernbert import pipeline

    result = pipeline("text-classification", model=str(out), device="cpu")(texts[0])
    probs = torch.softmax(a[0], -1)
    assert result[0]["label"] == ("yes" if probs[1] > probs[0] else "no")
    assert result[0]["score"] == pytest.approx(float(probs.max()), abs=1e-5)


def test_regression_and_multilabel_train(base, tmp_path):
    rng = random.Random(0)
    reg, multi = [], []
    for i in range(32):
        text = _example(rng, i % 2 == 0)
        reg.append({"sentence1": text, "sentence2": "Paris", "label": 1.0 * text.count("Paris") + 0.5})
        tags = (["paris"] if "Paris" in text else []) + (["dog"] if "dog" in text else [])
        multi.append({"text": text, "label": tags})
    write_jsonl(tmp_path / "reg.jsonl", reg)
    (tmp_path / "multi.json").write_text(json.dumps(multi))
    common = dict(model=str(base), learning_rate=3e-3, batch_tokens=160, epochs=2, num_threads=1, quiet=True)
    r = finetune(train=str(tmp_path / "reg.jsonl"), validation=str(tmp_path / "reg.jsonl"),
                 output=str(tmp_path / "r"), metric_for_best="spearmanr", **common)
    assert {"eval_pearson", "eval_spearmanr", "eval_mse"} <= r.keys()
    assert r["train_losses"][-1] < r["train_losses"][0]
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["problem_type"] == "regression" and len(cfg["id2label"]) == 1
    m = finetune(train=str(tmp_path / "multi.json"), validation=str(tmp_path / "multi.json"),
                 output=str(tmp_path / "m"), **common)
    assert {"eval_accuracy", "eval_f1", "eval_f1_micro"} <= m.keys()
    assert m["train_losses"][-1] < m["train_losses"][0]
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["problem_type"] == "multi_label_classification" and cfg["id2label"] == {"0": "dog", "1": "paris"}


def test_seed_gradient_checkpointing_accumulation_bf16(base, data, tmp_path):
    run = dict(validation=None, max_steps=4, scheduler="constant", warmup=0)
    a = finetune(**options(base, data, tmp_path / "a", **run))
    b = finetune(**options(base, data, tmp_path / "b", **run))
    assert a["train_losses"] == b["train_losses"]
    c = finetune(**options(base, data, tmp_path / "c", seed=1, **run))
    assert c["train_losses"] != a["train_losses"]
    g = finetune(**options(base, data, tmp_path / "g", gradient_checkpointing=True, **run))
    assert g["train_losses"] == pytest.approx(a["train_losses"], abs=1e-5)
    h = finetune(**options(base, data, tmp_path / "h", bf16=True, **run))
    assert all(math.isfinite(x) for x in h["train_losses"])
    assert h["train_losses"] == pytest.approx(a["train_losses"], abs=0.05)


def test_packed_loss_and_gradient_accumulation(base, data, tmp_path):
    from modernbert.training.finetune import _Run

    def run(name, **kw):
        cfg = FinetuneConfig(**options(base, data, tmp_path / name, validation=None, max_steps=1, warmup=0, **kw))
        cfg.validate()
        r = _Run(cfg)
        r.start()
        return r

    # The summed per-sequence loss over the sequences is the model's own (mean) loss of the packed batch.
    r = run("loss")
    batch = fd.pack(r.task.train.ids, [0, 1, 2, 3])
    labels = r.task.train.labels[batch.index]
    with torch.no_grad():
        out = r.model(input_ids=batch.input_ids, cu_seqlens=batch.cu_seqlens, labels=labels)
    assert float(r.task.loss_sum(out.logits, labels)) / 4 == pytest.approx(float(out.loss), abs=1e-6)
    # Two accumulated batches make the same step as one batch of the same sequences.
    one, two = run("one"), run("two", gradient_accumulation=2)
    one._step([[0, 1, 2, 3]])
    two._step([[0, 1], [2, 3]])
    assert two.train_losses == pytest.approx(one.train_losses, abs=1e-6)
    assert two.tokens_seen == one.tokens_seen == batch.num_tokens
    for (name, p), q in zip(one.model.named_parameters(), two.model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5, msg=name)
    assert not all(torch.equal(p, q) for p, q in zip(one.model.parameters(), r.model.parameters()))


def test_early_stopping_best_model_and_save_limit(base, data, tmp_path):
    out = tmp_path / "es"
    # A learning rate too small to change a float32 weight: the loss never improves after the first evaluation.
    m = finetune(**options(base, data, out, learning_rate=1e-30, eval_every=1, early_stopping_patience=2,
                           save_total_limit=1, epochs=5))
    assert m["stopped_early"] and m["step"] == 3 and m["best_step"] == 1
    assert [e["step"] for e in m["evals"]] == [1, 2, 3]
    assert len(list((out / "checkpoints").glob("step-*.pt"))) == 1


def test_kill9_then_resume_equals_uninterrupted(base, data, tmp_path):
    from safetensors.torch import load_file

    opts = dict(eval_every=2, epochs=2)
    whole = finetune(**options(base, data, tmp_path / "whole", **opts))
    cfg = FinetuneConfig(**options(base, data, tmp_path / "cut", **opts))
    # Killed while writing the third checkpoint (step 6): it resumes from step 4.
    assert run_child(FINETUNE, cfg, kill_at=KillAt("write", "step-*.pt", nth=3, after_bytes=4096)) == -9
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed = finetune(FinetuneConfig(**options(base, data, tmp_path / "cut", resume=True, **opts)))
    assert resumed["train_losses"] == whole["train_losses"]
    assert resumed["evals"] == [{**e, "eval_runtime": r["eval_runtime"]} for e, r in zip(whole["evals"],
                                                                                        resumed["evals"])]
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def strip(path):
        return [{k: v for k, v in r.items() if k not in TIMING_KEYS | {"eval_runtime", "config"}}
                for r in read_log(path)]

    assert strip(tmp_path / "cut" / "trainer_log.jsonl") == strip(tmp_path / "whole" / "trainer_log.jsonl")


def test_resume_refuses_changed_inputs_and_existing_runs(base, data, tmp_path):
    out = tmp_path / "run"
    finetune(**options(base, data, out, max_steps=2, validation=None))
    with pytest.raises(ValueError, match="already holds the checkpoints"):
        finetune(**options(base, data, out, max_steps=2, validation=None))
    with pytest.raises(ValueError, match="learning_rate"):
        finetune(**options(base, data, out, max_steps=2, validation=None, resume=True, learning_rate=1e-3))


# ----- bad inputs: one line, exit code 2 -----


@pytest.fixture
def cli(capsys):
    def run(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _bad(cli, base, tmp_path, train, validation=None, *extra):
    args = ["finetune", "text-classification", "--model", base, "--train", train, "--output", tmp_path / "out",
            "--max-steps", "1", "--quiet", "--num-threads", "1", *extra]
    if validation is not None:
        args += ["--validation", validation]
    code, out, err = cli(*args)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert not (tmp_path / "out" / "config.json").exists()
    return err


def test_bad_inputs_one_line_exit_2(cli, base, tmp_path):
    train = write_csv(tmp_path / "train.csv", rows(8))
    err = _bad(cli, base, tmp_path, train, None, "--label-column", "sentiment")
    assert f"{train}, line 1 (header): no column 'sentiment'" in err and "text, label" in err
    err = _bad(cli, base, tmp_path, train, None, "--text-column", "review")
    assert "no column 'review'" in err and "--text-column" in err
    dev = write_csv(tmp_path / "dev.csv", [*rows(2), {"text": "the dog", "label": "maybe"}])
    err = _bad(cli, base, tmp_path, train, dev)
    assert f"{dev}, line 4, column 'label': label 'maybe' of the validation data is not among the training " \
           "labels (no, yes)" in err
    (tmp_path / "empty.csv").write_text("")
    err = _bad(cli, base, tmp_path, tmp_path / "empty.csv")
    assert f"{tmp_path / 'empty.csv'}: the file holds no rows" in err
    (tmp_path / "header.csv").write_text("text,label\n")
    assert "no rows" in _bad(cli, base, tmp_path, tmp_path / "header.csv")
    (tmp_path / "empty.jsonl").write_text("\n")
    assert "no rows" in _bad(cli, base, tmp_path, tmp_path / "empty.jsonl")
    jsonl = tmp_path / "gap.jsonl"
    jsonl.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n')
    err = _bad(cli, base, tmp_path, jsonl)
    assert f"{jsonl}, line 2" in err and "'label'" in err
    reg = write_jsonl(tmp_path / "reg.jsonl", [{"text": "a", "label": 0.5}, {"text": "b", "label": "high"}])
    err = _bad(cli, base, tmp_path, reg, None, "--problem-type", "regression")
    assert f"{reg}, line 2, column 'label': 'high' is not a number" in err
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\nthe dog,yes\nthe,cat,no\n")
    assert f"{ragged}, line 3: 3 fields; expected 2" in _bad(cli, base, tmp_path, ragged)
    txt = tmp_path / "train.txt"
    txt.write_text("a")
    assert "unknown file type '.txt'" in _bad(cli, base, tmp_path, txt)
    code, out, err = cli("finetune", "text-clasification", "--model", base, "--train", train, "--output", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "invalid choice: 'text-clasification'" in err


def test_cli_trains_and_prints_metrics(cli, base, data, tmp_path):
    code, out, err = cli("finetune", "text-classification", "--model", base, "--train", data["train"],
                         "--validation", data["validation"], "--output", tmp_path / "out", "--max-steps", "2",
                         "--batch-tokens", "160", "--quiet", "--num-threads", "1")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["step"] == 2 and "eval_accuracy" in summary and "train_losses" not in summary
    assert (tmp_path / "out" / "model.safetensors").is_file()
