"""Every registered LR scheduler: builds, steps by its rule, and gives the right trajectory."""

from __future__ import annotations

import math

import pytest
import torch

from tune_app.training.schedulers import SCHEDULERS, Budget, create_scheduler, current_lr


def lr_trajectory(config, epochs=4, steps_per_epoch=5, lr=0.1):
    """The lr at the start of every optimizer step, driven exactly as the training loop drives it."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    schedule = create_scheduler(config, optimizer, Budget(epochs, steps_per_epoch))
    seen = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            seen.append(current_lr(optimizer))
            optimizer.step()
            schedule.after_step()
        schedule.after_epoch({"val_loss": 1.0})
    return seen


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_each_scheduler_runs_a_whole_budget(name):
    lrs = lr_trajectory({"name": name})
    assert len(lrs) == 20 and all(math.isfinite(v) and v >= 0 for v in lrs)


def test_none_keeps_the_lr():
    assert set(lr_trajectory({"name": "none"})) == {0.1}


def test_cosine_spans_the_trial_epochs_by_default():
    per_epoch = lr_trajectory({"name": "cosine"})[::5]
    expected = [0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert per_epoch == pytest.approx(expected)


def test_step_decays_every_step_size_epochs():
    per_epoch = lr_trajectory({"name": "step", "step_size": 2, "gamma": 0.5})[::5]
    assert per_epoch == pytest.approx([0.1, 0.1, 0.05, 0.05])


def test_onecycle_steps_per_batch_peaks_at_lr_and_ends_low():
    lrs = lr_trajectory({"name": "onecycle", "pct_start": 0.25})
    assert lrs[0] == pytest.approx(0.1 / 25)
    assert max(lrs) == pytest.approx(0.1)
    assert lrs.index(max(lrs)) == 4  # 25% of 20 steps, counted from 0
    assert len(set(lrs[:5])) == 5  # changes within an epoch
    assert lrs[-1] < 0.1 / 25


def test_unknown_scheduler_is_an_error():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="unknown scheduler 'cosin'"):
        create_scheduler({"name": "cosin"}, optimizer, Budget(2, 2))
