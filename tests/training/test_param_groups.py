"""Layer-wise lr decay and the head's lr multiple: timm's groups, the head's exact parameters, schedules,
checkpoints and PBT's perturbations."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from timm.optim import create_optimizer_v2

from tune_app.training import TrainConfig
from tune_app.training.datasets import DataConfig
from tune_app.training.engine import TrainingRun
from tune_app.training.freeze import stage_plan
from tune_app.training.lr_schedules import ScheduleLength, create_lr_schedule, current_lr
from tune_app.training.models import create_model, layer_decay_problem_for
from tune_app.training.optimizers import create_optimizer

SEG = "segmentation"


def by_parameter(optimizer: torch.optim.Optimizer) -> dict[int, tuple[float, float]]:
    """id(parameter) -> (its group's lr_scale, its group's weight decay)."""
    return {id(p): (g.get("lr_scale", 1.0), g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}


@pytest.mark.parametrize("name", ["timm/test_resnet", "timm/test_vit", "timm/test_convnext"])
def test_layer_decay_groups_the_parameters_as_timms_own_factory_with_the_lr_set(name):
    model = create_model(name, 5)
    ours = create_optimizer("adamw", model, lr=0.02, weight_decay=0.05, layer_decay=0.7)
    timms = create_optimizer_v2(model, opt="adamw", lr=0.02, weight_decay=0.05, layer_decay=0.7)
    assert by_parameter(ours) == by_parameter(timms)
    assert len({scale for scale, _ in by_parameter(ours).values()}) > 2  # really layer by layer
    for group in ours.param_groups:  # torch's schedules read lr, not lr_scale
        assert group["lr"] == pytest.approx(0.02 * group["lr_scale"])


@pytest.mark.parametrize(("name", "task", "encoder", "layer_decay"), [
    ("torchvision/resnet18", "classification", None, None),
    ("timm/test_resnet", "classification", None, 0.5),
    ("smp/Unet", SEG, "test_resnet", None),
])
def test_head_lr_mult_multiplies_exactly_the_heads_parameters(name, task, encoder, layer_decay):
    model = create_model(name, 3, task=task, encoder=encoder)
    head = {n for n, _ in model.named_parameters()} & set(stage_plan(model).head)
    plain = create_optimizer("sgd", model, lr=0.01, weight_decay=1e-4, layer_decay=layer_decay)
    multiplied = create_optimizer("sgd", model, lr=0.01, weight_decay=1e-4, layer_decay=layer_decay, head_lr_mult=8)
    lr_of = {id(p): g["lr"] for g in plain.param_groups for p in g["params"]}
    for group in multiplied.param_groups:
        for p in group["params"]:
            in_head = any(p is q for n, q in model.named_parameters() if n in head)
            assert group["lr"] == pytest.approx(lr_of[id(p)] * (8 if in_head else 1))
    assert head and sum(len(g["params"]) for g in multiplied.param_groups) == len(lr_of)


@pytest.mark.parametrize("schedule", [{"name": "cosine"}, {"name": "onecycle"}, {"name": "cyclic"},
                                      {"name": "step", "step_size": 1}, {"name": "cosine", "warmup_epochs": 1}])
def test_every_schedule_keeps_the_groups_ratios(schedule):
    model = create_model("timm/test_resnet", 3)
    optimizer = create_optimizer("adamw", model, lr=0.01, weight_decay=0.05, layer_decay=0.5, head_lr_mult=4)
    lr_schedule = create_lr_schedule(schedule, optimizer, ScheduleLength(4, 3))
    for _ in range(7):
        optimizer.step()
        lr_schedule.after_step()
        lr_schedule.after_epoch()
        base = current_lr(optimizer)
        for group in optimizer.param_groups:
            assert group["lr"] == pytest.approx(base * group["lr_scale"])


def test_a_model_without_layer_groups_is_named_in_the_refusal():
    assert layer_decay_problem_for("timm/test_resnet") is None
    assert "torchvision/resnet18 has no layer groups" in layer_decay_problem_for("torchvision/resnet18")
    assert "smp/Unet has no layer groups" in layer_decay_problem_for("smp/Unet", task=SEG, encoder="test_resnet")
    with pytest.raises(ValueError, match="no layer groups"):
        create_optimizer("adamw", create_model("torchvision/resnet18", 3), lr=0.01, layer_decay=0.7)
    off = create_optimizer("adamw", create_model("torchvision/resnet18", 3), lr=0.01, layer_decay=1.0)
    assert {g["lr"] for g in off.param_groups} == {0.01}  # 1 is off, for every model


@pytest.mark.slow  # trains an epoch
def test_a_run_reports_the_schedules_lr_checkpoints_and_takes_perturbed_scales():
    config = TrainConfig(model="timm/test_resnet", epochs=2, batch_size=64, lr=0.01, weight_decay=0.05,
                         layer_decay=0.6, head_lr_mult=5, scheduler={"name": "cosine"},
                         data=DataConfig(image_size=16))
    run = TrainingRun(config)
    first = run.run_epoch()
    assert first["lr"] == pytest.approx(0.01)  # the searched lr, not the stem's
    state = copy.deepcopy(run.state_dict())  # the live tensors go on training
    assert state["config"]["layer_decay"] == 0.6 and state["config"]["head_lr_mult"] == 5
    # resumed from the checkpoint, the second epoch is the uninterrupted one's (one after the other: the
    # global random state is part of the checkpoint)
    second = run.run_epoch()
    resumed = TrainingRun(config, data=run.data)
    resumed.load_state_dict(state)
    again = resumed.run_epoch()
    assert (again["val_loss"], again["lr"]) == (second["val_loss"], second["lr"])
    # PBT: a better trial's checkpoint under a perturbed lr, layer decay and head multiple
    perturbed = TrainingRun(dataclasses.replace(config, lr=0.02, layer_decay=0.8, head_lr_mult=2), data=run.data)
    perturbed.load_state_dict(state)
    perturbed.adopt_hyperparameters(config.to_dict())
    reference = create_optimizer("adamw", perturbed.model, lr=0.02, weight_decay=0.05, layer_decay=0.8, head_lr_mult=2)
    factor = perturbed.optimizer.param_groups[0]["lr"] / reference.param_groups[0]["lr"]  # where the cosine stands
    assert factor == pytest.approx(state["scheduler"]["_last_lr"][0] / 0.01 / 0.6 ** 5, rel=1e-6)
    for group, fresh in zip(perturbed.optimizer.param_groups, reference.param_groups, strict=True):
        assert group["lr_scale"] == pytest.approx(fresh["lr_scale"])
        assert group["lr"] == pytest.approx(fresh["lr"] * factor)
        assert group["initial_lr"] == pytest.approx(fresh["lr"])
