"""unfreeze_epoch: the head trains alone first, then every layer, with the optimizer and schedule going on."""

from __future__ import annotations

import copy

import pytest
import torch

from tune_app.training import TrainConfig
from tune_app.training.datasets import DataConfig
from tune_app.training.engine import TrainingRun
from tune_app.training.freeze import freeze, unfreeze
from tune_app.training.models import create_model

DIGITS = DataConfig(dataset="digits", image_size=16)


def _config(**changes) -> TrainConfig:
    values = dict(model="timm/test_resnet", epochs=3, freeze_depth=2, unfreeze_epoch=1, lr=0.01, data=DIGITS,
                  batch_size=64, scheduler={"name": "cosine"})
    return TrainConfig(**{**values, **changes})


def test_unfreeze_gives_back_the_same_batch_norms_with_the_values_loaded_while_frozen():
    model = create_model("timm/test_resnet", num_classes=3)
    original = model.bn1
    weight = original.weight
    frozen = freeze(model, 2)
    assert type(model.bn1).__name__ == "FrozenBatchNorm2d" and not model.layer1[0].conv1.weight.requires_grad
    with torch.no_grad():  # as a checkpoint loaded before the switch does
        model.bn1.running_mean.fill_(0.25)
        model.bn1.weight.fill_(2.0)
    unfreeze(model, frozen)
    assert model.bn1 is original and model.bn1.weight is weight  # the optimizer's parameter object
    assert torch.equal(model.bn1.running_mean, torch.full_like(weight, 0.25))
    assert torch.equal(model.bn1.weight.detach(), torch.full_like(weight, 2.0))
    assert all(p.requires_grad for p in model.parameters())


def test_frozen_until_the_epoch_then_every_layer_trains_and_the_optimizer_keeps_the_others_state():
    run = TrainingRun(_config())
    backbone = run.model.layer1[0].conv1.weight
    head = run.model.fc.weight
    optimized = {id(p) for group in run.optimizer.param_groups for p in group["params"]}
    assert id(backbone) in optimized  # in the optimizer from the start, without state or gradient while frozen
    frozen_count = run.trainable_params

    first = run.run_epoch()
    assert not backbone.requires_grad and first["trainable_params"] == frozen_count
    assert backbone not in run.optimizer.state and torch.equal(backbone, run.model.layer1[0].conv1.weight)
    head_state = {k: v.clone() for k, v in run.optimizer.state[head].items()}
    groups = [{k: v for k, v in g.items() if k != "params"} for g in run.optimizer.param_groups]
    before = backbone.detach().clone()

    run.thaw()  # what run_epoch does first at the switch
    assert backbone.requires_grad and type(run.model.bn1).__name__ == "BatchNorm2d"
    assert run.trainable_params == sum(p.numel() for p in run.model.parameters()) > frozen_count
    for key, value in run.optimizer.state[head].items():  # the head's state is untouched by the switch
        assert torch.equal(value, head_state[key]), key
    assert [{k: v for k, v in g.items() if k != "params"} for g in run.optimizer.param_groups] == groups

    second = run.run_epoch()
    assert second["trainable_params"] == run.trainable_params and second["lr"] < first["lr"]  # the schedule goes on
    assert not torch.equal(backbone.detach(), before) and backbone in run.optimizer.state


@pytest.mark.parametrize("stop_after", [1, 2], ids=["before-the-switch", "after-the-switch"])
def test_a_run_resumed_on_either_side_of_the_switch_ends_as_the_uninterrupted_one(stop_after):
    config = _config(ema=0.9)
    run = TrainingRun(config)
    saved = None
    for metrics in run.epochs():
        if metrics["epoch"] == stop_after:
            saved = copy.deepcopy(run.state_dict())
    assert saved["thawed"] == (stop_after >= 1 + 1)  # thawed at the start of the second epoch
    resumed = TrainingRun(config)
    resumed.load_state_dict(saved)
    last = list(resumed.epochs())[-1]
    assert last["val_loss"] == metrics["val_loss"] and last["val_loss_raw"] == metrics["val_loss_raw"]
    assert last["trainable_params"] == metrics["trainable_params"]
    for key, value in run.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_without_unfreeze_epoch_the_frozen_layers_stay_out_of_the_optimizer():
    run = TrainingRun(_config(unfreeze_epoch=None, epochs=1))
    optimized = {id(p) for group in run.optimizer.param_groups for p in group["params"]}
    assert id(run.model.layer1[0].conv1.weight) not in optimized
    run.run_epoch()
    assert run.frozen is None and not run.model.layer1[0].conv1.weight.requires_grad


def test_pbt_s_perturbed_layer_decay_is_adopted_before_and_after_the_switch():
    """The optimizer holds the whole model while layers wait to thaw: the new scales are grouped the same way."""
    config = _config(layer_decay=0.8, head_lr_mult=2.0, unfreeze_epoch=2, epochs=3)
    run = TrainingRun(config)
    for _ in range(2):
        run.run_epoch()
        saved = copy.deepcopy(run.state_dict())
        perturbed = TrainingRun(_config(layer_decay=0.9, head_lr_mult=3.0, unfreeze_epoch=2, epochs=3))
        perturbed.load_state_dict(saved)
        perturbed.adopt_hyperparameters(saved["config"])
        fresh = TrainingRun(_config(layer_decay=0.9, head_lr_mult=3.0, unfreeze_epoch=2, epochs=3))
        assert [g["lr_scale"] for g in perturbed.optimizer.param_groups] == pytest.approx(
            [g["lr_scale"] for g in fresh.optimizer.param_groups])
        assert perturbed.run_epoch()["epoch"] == run.epoch + 1
