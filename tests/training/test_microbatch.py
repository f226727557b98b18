"""Micro-batches with gradient accumulation: the same training in smaller pieces, and the retry out of memory."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tune_app.training import DataConfig, TrainConfig, TrainingRun, build_data
from tune_app.training.faults import FAULT_ENV
from tune_app.training.microbatch import accumulation


@pytest.fixture(scope="module")
def digits16():
    return build_data(DataConfig(dataset="digits", image_size=16))


def config(**overrides) -> TrainConfig:
    values = dict(model="timm/test_resnet", data=DataConfig(image_size=16), epochs=2, lr=3e-3, device="cpu",
                  batch_size=32, scheduler={"name": "onecycle"}, precise_bn="off")  # onecycle: a new lr every step
    values.update(overrides)
    return TrainConfig(**values)


def steps_and_lrs(run: TrainingRun, steps: int) -> list[float]:
    """The lr of every optimizer step ``run`` takes in its first ``steps`` batches."""
    lrs: list[float] = []
    run.optimizer.register_step_post_hook(lambda optimizer, *_: lrs.append(optimizer.param_groups[0]["lr"]))
    run.train_one_epoch(max_steps=steps)
    return lrs


def test_micro_batches_take_the_same_optimizer_steps_on_the_same_lr_schedule(digits16):
    whole = TrainingRun(config(), data=digits16)
    halves = TrainingRun(config(), data=digits16)
    halves.micro_batch = 16  # 16 x 2 instead of 32
    expected = steps_and_lrs(whole, 6)
    assert len(expected) == 6 and len(set(expected)) == 6  # one step per batch, each at its own lr
    assert steps_and_lrs(halves, 6) == expected
    assert halves.schedule.state_dict() == whole.schedule.state_dict()


def test_accumulated_gradients_add_up_to_the_whole_batch_s(digits16):
    """Without batch statistics (BatchNorm in eval mode), 8 x 4 trains exactly what 32 does."""
    runs = [TrainingRun(config(optimizer="sgd"), data=digits16) for _ in range(2)]  # sgd: a wrong scale shows
    runs[1].micro_batch = 8
    for run in runs:
        eval_mode = type(run.model).train.__get__(run.model)
        run.model.train = lambda mode=True, eval_mode=eval_mode: eval_mode(False)  # keep the running statistics
        run.train_one_epoch(max_steps=3)
    for a, b in zip(runs[0].model.parameters(), runs[1].model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_out_of_memory_halves_the_micro_batch_down_to_what_fits(digits16, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, json.dumps({"fault": "oom", "above_batch": 8}))
    run = TrainingRun(config(epochs=1), data=digits16)
    metrics = run.train_one_epoch(max_steps=3)  # (a whole epoch's micro_batch and accumulation: test_faults)
    assert (run.micro_batch, accumulation(32, run.micro_batch)) == (8, 4)
    assert math.isfinite(metrics["train_loss"])  # trained
    resumed = TrainingRun(config(epochs=1), data=digits16)
    resumed.load_state_dict(run.state_dict())
    assert resumed.micro_batch == 8  # a restored trial continues at the size that fits


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"oom_retry": False}, "out of memory at batch_size 32 with amp off (tune.oom_retry is off)"),
    ({"oom_min_batch": 16}, "out of memory at batch_size 32 with amp off, even in micro-batches of 16 "
                            "(tune.oom_min_batch is 16)"),
], ids=["retry off", "minimum reached"])
def test_out_of_memory_stands_when_retry_is_off_or_at_the_minimum(digits16, monkeypatch, overrides, reason):
    monkeypatch.setenv(FAULT_ENV, json.dumps({"fault": "oom", "above_batch": 8}))
    run = TrainingRun(config(**overrides), data=digits16)
    with pytest.raises(torch.OutOfMemoryError):
        run.train_one_epoch(max_steps=1)
    assert run.oom_text() == reason
