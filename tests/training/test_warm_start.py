"""scripts/warm_start.py: a run that starts from an existing model's weights, then resumes as `modernbert pretrain`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from conftest import load_script
from safetensors.torch import load_file

from modernbert.training import pretrain
from modernbert.training.pretrain import list_checkpoints


def _argv(cfg) -> list[str]:
    """The command line of a ``PretrainConfig`` (the options the tiny runs set)."""
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + f.name.replace("_", "-"))
        elif value is not None:
            out += [flag, str(value)]
    return out


def test_warm_start_continues_from_the_weights(tiny_cfg, capsys):
    source = pretrain(tiny_cfg("source", steps=30, lr=5e-3, eval_every=0, save_every=0))
    warm_start = load_script("warm_start")
    cfg = tiny_cfg("warm", steps=6, eval_every=0, save_every=3)
    rc = warm_start.main(_argv(cfg) + ["--init-from", source["final_dir"], "--eval-at-start"])
    assert rc == 0, capsys.readouterr().err

    (step0,) = list_checkpoints(cfg.out_dir)
    state = torch.load(step0, weights_only=False)
    assert state["step"] == 0
    init = load_file(str(Path(source["final_dir"]) / "model.safetensors"))
    for name, tensor in init.items():
        assert torch.equal(state["model"][name], tensor), name
    # the step-0 evaluation is the source model's, on the same held-out positions
    (record,) = [json.loads(line) for line in open(Path(cfg.out_dir) / "log.jsonl") if '"eval"' in line]
    assert record["step"] == 0
    assert abs(record["loss"] - source["eval"]["loss"]) < 1e-4

    warm = pretrain(dataclasses.replace(cfg, resume=True))
    cold = pretrain(tiny_cfg("cold", steps=6, eval_every=0, save_every=3))
    assert warm["completed"] and warm["step"] == 6
    assert warm["train_losses"][0] < cold["train_losses"][0] - 1.0  # it started from the trained weights
    assert warm["eval"]["loss"] < cold["eval"]["loss"]


def test_warm_start_refuses_other_shapes_and_used_run_folders(tiny_cfg, capsys):
    source = pretrain(tiny_cfg("source", steps=2, eval_every=0, save_every=0))
    warm_start = load_script("warm_start")
    wide = tiny_cfg("wide", hidden_size=48, intermediate_size=64)
    assert warm_start.main(_argv(wide) + ["--init-from", source["final_dir"]]) == 2
    assert "does not match the run's model" in capsys.readouterr().err
    assert not list_checkpoints(wide.out_dir)

    used = tiny_cfg("used", steps=4, save_every=2, stop_after=2, eval_every=0)
    pretrain(used)
    assert warm_start.main(_argv(used) + ["--init-from", source["final_dir"]]) == 2
    assert "already holds checkpoints" in capsys.readouterr().err
    missing = Path(source["final_dir"]) / "nope"
    assert warm_start.main(_argv(tiny_cfg("x")) + ["--init-from", str(missing)]) == 2
    assert "has no config.json" in capsys.readouterr().err
