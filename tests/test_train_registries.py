"""`tune-app train` runs every registered loss and LR scheduler family on both built-in tasks."""

from __future__ import annotations

import pytest
import yaml

from tune_app.cli import main
from tune_app.training import LOSSES, LR_SCHEDULES

DIGITS = {
    "name": "digits", "task": "classification",
    "data": {"dataset": "digits", "image_size": 16, "batch_size": 64},
    "model": {"name": "timm/test_resnet"},
    "train": {"epochs": 2, "metric": "val_acc"},
    "search": {"lr": 0.003},
}
SHAPES = {
    "name": "shapes", "task": "segmentation",
    "data": {"dataset": "shapes", "image_size": 32, "batch_size": 32},
    "model": {"name": "smp/Linknet", "encoder": "test_resnet"},  # a light decoder: this runs many times
    "train": {"epochs": 1, "metric": "val_dice"},
    "search": {"lr": 0.003},
}
TASKS = {"digits": DIGITS, "shapes": SHAPES}


def train(tmp_path, capsys, base, knob, name):
    spec = {**base, "search": {**base["search"], knob: {"name": name}}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["train", str(path)]) == 0
    out = capsys.readouterr().out
    epochs = base["train"]["epochs"]
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == [f"{e}/{epochs}" for e in range(1, epochs + 1)]
    final = float(out.rsplit(f"final {base['train']['metric']}: ", 1)[1].split()[0])
    assert 0.0 <= final <= 1.0
    return out


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_train_runs_each_loss(tmp_path, capsys, task, loss):
    train(tmp_path, capsys, TASKS[task], "loss", loss)


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("scheduler", sorted(LR_SCHEDULES))
def test_train_runs_each_scheduler_family(tmp_path, capsys, task, scheduler):
    if scheduler == "plateau" and task == "shapes":
        out = train(tmp_path, capsys, {**SHAPES, "search": {"lr": 0.003}}, "scheduler", scheduler)
    else:
        out = train(tmp_path, capsys, TASKS[task], "scheduler", scheduler)
    assert "lr " in out


def test_train_runs_the_fine_tuning_knobs_together(tmp_path, capsys):
    knobs = {"freeze_depth": 2, "unfreeze_epoch": 1, "layer_decay": 0.8, "head_lr_mult": 5.0, "drop_path": 0.1,
             "ema": 0.9, "mixup": 0.8, "cutmix": 1.0, "mixup_mode": "elem", "mixup_switch_prob": 0.3}
    out = train(tmp_path, capsys, {**DIGITS, "search": {**DIGITS["search"], **knobs}}, "loss", "focal")
    assert all("val_acc_raw" in line for line in out.splitlines() if line.startswith("epoch "))  # ema on
