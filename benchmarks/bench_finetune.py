"""Fine-tuning side by side: transformers' `Trainer` against `modernbert.training.finetune`, same everything.

Sequence classification on variable-length texts. Both sides start from the same checkpoint folder, read the
same train/validation JSONL files (`text`, `label`), tokenize with the folder's tokenizer, truncate at the same
`--max-length`, and train with the same hyperparameters: AdamW (betas 0.9/0.98, eps 1e-6), lr, weight decay,
6% linear warmup then linear decay, gradient clipping at 1.0, `--batch-size` sequences per step, `--epochs`.
What differs is how a batch runs:

    trainer   transformers.Trainer + ModernBertForSequenceClassification (sdpa), DataCollatorWithPadding:
              each batch padded to its longest text, in the Trainer's shuffled order
    ours      modernbert.training.finetune: the same number of texts per step, unpadded and packed
              (`batch_size` texts, `batch_tokens` large enough not to bind), grouped by length

Each seed trains both sides, one after the other (sides alternate which goes first), so drifts of the
machine hit both. Reported per side: validation accuracy and macro-F1 after the last epoch (mean and spread
over the seeds; both computed by the same function), and training throughput in real (non-padding) tokens per
second of training time (evaluation excluded on both sides).

    python scripts/build_task_data.py --out data/tasks          # the WordNet tasks (see docs/task-data.md)
    python benchmarks/bench_finetune.py --data data/tasks/lexclass --seeds 0 1 2
    python benchmarks/bench_finetune.py --quick                  # smoke test on a few rows
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit_report, environment, log, print_table, quiet_transformers  # noqa: E402

SIDES = ("trainer", "ours")


def read_rows(path: Path, limit: int | None) -> list[dict]:
    """(text, label) rows; the text is the `text` or `sentence` column."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [{"text": r["text"] if "text" in r else r["sentence"], "label": r["label"]} for r in rows]
    return rows[:limit] if limit else rows


def label_space(rows: list[dict]) -> list:
    return sorted({r["label"] for r in rows}, key=str)


def scores(y_true: list[int], y_pred: list[int], num_classes: int) -> dict[str, float]:
    from modernbert.training.metrics import classification_metrics

    m = classification_metrics(np.asarray(y_true), np.asarray(y_pred), num_classes)
    return {"accuracy": float(m["accuracy"]), "f1": float(m["f1"])}


def run_ours(args: argparse.Namespace, seed: int, train: Path, validation: Path, dtype: str) -> dict[str, Any]:
    from modernbert.training import finetune

    with tempfile.TemporaryDirectory() as out:
        m = finetune(task="text-classification", model=args.model, train=str(train), validation=str(validation),
                     output=out, epochs=args.epochs, learning_rate=args.lr, weight_decay=args.weight_decay,
                     warmup=0.06, scheduler="linear", batch_size=args.batch_size,
                     batch_tokens=args.batch_size * args.max_length, max_length=args.max_length, seed=seed,
                     bf16=dtype == "bf16", eval_every=0, log_every=10 ** 9, save_total_limit=1,
                     num_threads=torch.get_num_threads(), quiet=True)
    # The last model, as the Trainer's side reports: m["eval_*"] are the best evaluation's, a selection over epochs.
    last = m["evals"][-1]
    if last["step"] != m["step"]:
        raise RuntimeError(f"the last evaluation is at step {last['step']}, not the last step {m['step']}")
    return {"tokens": m["tokens_seen"], "seconds": m["train_runtime"], "accuracy": last["eval_accuracy"],
            "f1": last["eval_f1"], "best_accuracy": m["eval_accuracy"], "steps": m["step"]}


def run_trainer(args: argparse.Namespace, seed: int, train_rows: list[dict], val_rows: list[dict],
                labels: list, dtype: str) -> dict[str, Any]:
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(args.model)
    label_id = {lab: i for i, lab in enumerate(labels)}

    def encode(rows: list[dict]) -> list[dict]:
        enc = tok([r["text"] for r in rows], truncation=True, max_length=args.max_length)
        return [{"input_ids": ids, "attention_mask": am, "labels": label_id[r["label"]]}
                for ids, am, r in zip(enc["input_ids"], enc["attention_mask"], rows)]

    class Timer(transformers.TrainerCallback):  # times the training steps only (no evaluation runs in them)
        start = seconds = 0.0

        def on_train_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_train_end(self, *a, **k):
            self.seconds = time.perf_counter() - self.start

    train_ds, val_ds = encode(train_rows), encode(val_rows)
    transformers.set_seed(seed)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=len(labels), attn_implementation="sdpa",
        id2label=dict(enumerate(map(str, labels))), label2id={str(lab): i for i, lab in enumerate(labels)})
    with tempfile.TemporaryDirectory() as out:
        targs = transformers.TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=args.batch_size,
            num_train_epochs=args.epochs, learning_rate=args.lr, weight_decay=args.weight_decay, warmup_steps=0.06,
            lr_scheduler_type="linear", adam_beta1=0.9, adam_beta2=0.98, adam_epsilon=1e-6, max_grad_norm=1.0,
            seed=seed, data_seed=seed, bf16=dtype == "bf16", use_cpu=True, eval_strategy="no", save_strategy="no",
            logging_strategy="no", report_to=[], disable_tqdm=True, dataloader_num_workers=0)
        timer = Timer()
        trainer = transformers.Trainer(model=model, args=targs, train_dataset=train_ds,
                                       data_collator=transformers.DataCollatorWithPadding(tok), callbacks=[timer])
        result = trainer.train()
        pred = trainer.predict(val_ds)
    y_pred = np.asarray(pred.predictions).argmax(-1).tolist()
    real = args.epochs * sum(len(r["input_ids"]) for r in train_ds)
    return {"tokens": real, "seconds": timer.seconds, "steps": result.global_step,
            **scores([r["labels"] for r in val_ds], y_pred, len(labels))}


def summarize(runs: list[dict]) -> dict[str, Any]:
    def mean_sd(key: str) -> tuple[float, float]:
        xs = [r[key] for r in runs]
        return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0

    rates = [r["tokens"] / r["seconds"] for r in runs]
    acc, acc_sd = mean_sd("accuracy")
    f1, f1_sd = mean_sd("f1")
    return {"accuracy": acc, "accuracy_sd": acc_sd, "f1": f1, "f1_sd": f1_sd,
            "tokens_per_s": statistics.median(rates), "rates": rates, "runs": runs}


def print_report(report: dict, file: Any) -> None:
    rows = []
    for dtype, sides in report["results"].items():
        base = sides["trainer"]["tokens_per_s"]
        for side, s in sides.items():
            rows.append([dtype, side, f"{s['accuracy']:.4f} ± {s['accuracy_sd']:.4f}",
                         f"{s['f1']:.4f} ± {s['f1_sd']:.4f}", f"{s['tokens_per_s']:,.0f}",
                         f"{s['tokens_per_s'] / base:.2f}x"])
    print(f"model {report['model']}, {report['train_rows']} train / {report['validation_rows']} validation rows, "
          f"seeds {report['seeds']}, {report['epochs']} epochs, batch {report['batch_size']}, "
          f"{report['threads']} threads", file=file)
    print_table(rows, ["dtype", "side", "val accuracy", "val macro-F1", "real tokens/s", "vs trainer"], left=2,
                file=file)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="modernbert-tiny", help="a checkpoint folder or a bundled name")
    p.add_argument("--data", default="data/tasks/lexclass",
                   help="a folder with train.jsonl and validation.jsonl (text or sentence, label)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--lr", type=float, default=8e-5)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--train-rows", type=int, default=None, help="use the first N training rows")
    p.add_argument("--validation-rows", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="a few rows, one seed, one epoch: a smoke test")
    p.add_argument("--json", help="write the report as JSON here ('-' for stdout)")
    args = p.parse_args()
    if args.quick:
        args.seeds, args.epochs = args.seeds[:1], 1
        args.train_rows, args.validation_rows = args.train_rows or 64, args.validation_rows or 32
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_transformers()
    from modernbert import hub

    args.model = str(hub.resolve_folder(args.model))
    data = Path(args.data)
    train, validation = data / "train.jsonl", data / "validation.jsonl"
    for f in (train, validation):
        if not f.is_file():
            raise SystemExit(f"{f} not found: build it with python scripts/build_task_data.py --out data/tasks")
    train_rows, val_rows = read_rows(train, args.train_rows), read_rows(validation, args.validation_rows)
    labels = label_space(train_rows)
    known = set(labels)
    kept = [r for r in val_rows if r["label"] in known]
    if len(kept) < len(val_rows):  # a few training rows (--quick, --train-rows) may not cover every class
        log(f"left out {len(val_rows) - len(kept)} validation rows whose label is not in the training rows")
    val_rows = kept
    with tempfile.TemporaryDirectory() as tmp:  # both sides read exactly the rows used
        train_f, val_f = Path(tmp) / "train.jsonl", Path(tmp) / "validation.jsonl"
        train_f.write_text("".join(json.dumps(r) + "\n" for r in train_rows))
        val_f.write_text("".join(json.dumps(r) + "\n" for r in val_rows))
        results: dict[str, dict] = {}
        for dtype in args.dtypes:
            runs: dict[str, list] = {s: [] for s in SIDES}
            for i, seed in enumerate(args.seeds):
                for side in (SIDES if i % 2 == 0 else SIDES[::-1]):
                    log(f"{dtype} seed {seed}: {side} ...")
                    r = (run_trainer(args, seed, train_rows, val_rows, labels, dtype) if side == "trainer"
                         else run_ours(args, seed, train_f, val_f, dtype))
                    log(f"  {r['tokens'] / r['seconds']:,.0f} tokens/s, accuracy {r['accuracy']:.4f}, "
                        f"f1 {r['f1']:.4f}, {r['steps']} steps, {r['seconds']:.1f} s")
                    if not math.isfinite(r["accuracy"]):
                        raise SystemExit(f"{side} produced a non-finite metric")
                    runs[side].append(r)
            results[dtype] = {s: summarize(runs[s]) for s in SIDES}
    report = {"model": args.model, "train_rows": len(train_rows), "validation_rows": len(val_rows),
              "labels": len(labels), "seeds": args.seeds, "epochs": args.epochs, "batch_size": args.batch_size,
              "max_length": args.max_length, "threads": torch.get_num_threads(),
              "environment": environment(torch.device("cpu")), "results": results}
    emit_report(report, args.json, print_report)


if __name__ == "__main__":
    main()
