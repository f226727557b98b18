"""The weights' moving average: timm's update with warmup, evaluated beside the raw weights, checkpointed."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from torch import nn

from tune_app.training import TrainConfig
from tune_app.training.datasets import DataConfig
from tune_app.training.ema import WeightAverage, scored_weights
from tune_app.training.engine import TrainingRun


def test_the_average_equals_a_hand_computed_one_with_warmup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    average = WeightAverage(model, decay=0.8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    expected = {k: v.clone().float() for k, v in model.state_dict().items()}
    for step in range(1, 8):
        optimizer.zero_grad()
        model(torch.randn(16, 4)).pow(2).mean().backward()
        optimizer.step()
        average.update(model)
        decay = min(0.8, 1 - step ** (-2 / 3))  # the first step's average is the weights themselves
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                expected[key] = decay * expected[key] + (1 - decay) * value
            else:
                expected[key] = value.clone()
    for key, value in average.module.state_dict().items():
        torch.testing.assert_close(value.float(), expected[key].float(), rtol=1e-5, atol=1e-6)
    assert average.steps == 7 and not torch.equal(average.module[0].weight, model[0].weight)


def test_a_checkpoint_exports_the_weights_that_were_scored():
    weights, averaged = {"w": torch.zeros(1)}, {"w": torch.ones(1)}
    assert scored_weights({"model": weights, "ema": None}) is weights
    assert scored_weights({"model": weights, "ema": {"weights": averaged, "steps": 3}}) is averaged


@pytest.mark.slow  # trains two epochs
def test_a_run_scores_the_average_reports_the_raw_weights_beside_and_resumes_the_same():
    config = TrainConfig(model="timm/test_resnet", epochs=2, batch_size=64, lr=0.01, ema=0.9,
                         data=DataConfig(image_size=16))
    run = TrainingRun(config)
    first = run.run_epoch()
    assert {"val_acc", "val_acc_raw", "val_loss", "val_loss_raw", "val_f1_raw"} <= set(first)
    assert first["val_loss"] != first["val_loss_raw"]
    state = copy.deepcopy(run.state_dict())  # the live tensors go on training
    assert state["ema"]["steps"] == len(run.train_loader)
    averaged = state["ema"]["weights"]
    assert not all(torch.equal(averaged[k], v) for k, v in state["model"].items())
    second = run.run_epoch()
    resumed = TrainingRun(config, data=run.data)
    resumed.load_state_dict(state)
    again = resumed.run_epoch()
    keys = ("val_loss", "val_acc", "val_loss_raw", "val_acc_raw")
    assert [again[k] for k in keys] == [second[k] for k in keys]
    # PBT: a perturbed decay takes effect, the average itself is kept
    perturbed = TrainingRun(dataclasses.replace(config, ema=0.99), data=run.data)
    perturbed.load_state_dict(state)
    perturbed.adopt_hyperparameters(config.to_dict())
    assert perturbed.average.decay == 0.99 and perturbed.average.steps == state["ema"]["steps"]
    assert all(torch.equal(perturbed.average.module.state_dict()[k], v) for k, v in averaged.items())
    # off: no average, the metrics as before
    plain = TrainingRun(dataclasses.replace(config, ema=0.0), data=run.data)
    assert plain.average is None and plain.state_dict()["ema"] is None
