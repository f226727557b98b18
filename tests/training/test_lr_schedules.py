"""Every registered LR scheduler: builds from YAML, steps by its rule, gives the right trajectory, resumes."""

from __future__ import annotations

import doctest
import inspect
import io
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.optim import lr_scheduler as lrs

from tune_app.spec.space import SpaceError, parse_space
from tune_app.training import KNOBS
from tune_app.training import lr_schedules as schedulers_module
from tune_app.training.lr_schedules import (
    LR_SCHEDULES,
    WARMUP_PARAMS,
    ChainSchema,
    ScheduleLength,
    create_lr_schedule,
    current_lr,
)

LR = 0.1
Metrics = Callable[[int], dict[str, float]]


def flat(epoch: int) -> dict[str, float]:
    """Every metric the same every epoch: a plateau from the start."""
    return {"train_loss": 1.0, "val_loss": 1.0, "val_acc": 0.5, "val_f1": 0.5}


def sgd(lr: float = LR, momentum: float = 0.9) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=lr, momentum=momentum)


def adamw_two_groups(lr: float = LR) -> torch.optim.Optimizer:
    # like timm's optimizer factory: one group with weight decay, one without
    groups = [{"params": [torch.zeros(2, requires_grad=True)]},
              {"params": [torch.zeros(2, requires_grad=True)], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr)


def momentum_of(optimizer: torch.optim.Optimizer) -> float:
    group = optimizer.param_groups[0]
    return group["betas"][0] if "betas" in group else group.get("momentum", 0.0)


def drive(schedule, optimizer, budget: ScheduleLength, start: int = 0, stop: int | None = None,
          metrics: Metrics = flat, record: Callable[[torch.optim.Optimizer], Any] = current_lr) -> list:
    """Optimizer steps ``start`` to ``stop``, hooked as the training loop hooks them; ``record`` before each."""
    seen = []
    for step in range(start, budget.total_steps if stop is None else stop):
        seen.append(record(optimizer))
        optimizer.step()
        schedule.after_step()
        if (step + 1) % budget.steps_per_epoch == 0:
            schedule.after_epoch(metrics((step + 1) // budget.steps_per_epoch - 1))
    return seen


def lr_per_step(config: dict, epochs: int = 4, steps_per_epoch: int = 5, metrics: Metrics = flat,
                optimizer: torch.optim.Optimizer | None = None) -> list[float]:
    optimizer = optimizer or sgd()
    budget = ScheduleLength(epochs, steps_per_epoch)
    return drive(create_lr_schedule(config, optimizer, budget), optimizer, budget, metrics=metrics)


def lr_per_epoch(config: dict, epochs: int = 4, metrics: Metrics = flat) -> list[float]:
    """The lr of each epoch (of its first step; per-epoch families keep it all epoch)."""
    return lr_per_step(config, epochs, steps_per_epoch=3, metrics=metrics)[::3]


def cosine(t: float, period: float, low: float = 0.0, high: float = LR) -> float:
    """Half a cosine from ``high`` at t=0 down to ``low`` at t=period."""
    return low + (high - low) * (1 + math.cos(math.pi * t / period)) / 2


def variants() -> list:
    """Every registry entry with its defaults, bare and behind a one-epoch warmup."""
    return [pytest.param(name, warmup, id=name + "+warmup" * warmup) for name in LR_SCHEDULES for warmup in (0, 1)]


def build(name: str, warmup: int, optimizer: torch.optim.Optimizer, budget: ScheduleLength):
    return create_lr_schedule({"name": name, "warmup_epochs": warmup}, optimizer, budget)


# --------------------------------------------------------------- coverage
def torch_scheduler_classes() -> set[type]:
    """Every public, concrete scheduler class torch ships (ReduceLROnPlateau included)."""
    return {cls for name, cls in inspect.getmembers(lrs, inspect.isclass)
            if not name.startswith("_") and cls.__module__ == lrs.__name__
            and issubclass(cls, (lrs.LRScheduler, lrs.ReduceLROnPlateau))
            and cls is not lrs.LRScheduler and not inspect.isabstract(cls)}


def test_every_torch_scheduler_class_is_reachable_from_yaml():
    expected = torch_scheduler_classes()
    assert {lrs.CosineAnnealingLR, lrs.SequentialLR, lrs.ChainedScheduler, lrs.ReduceLROnPlateau} <= expected
    reached = set()
    for name in LR_SCHEDULES:
        for warmup in (0, 1):
            schedule = build(name, warmup, sgd(), ScheduleLength(4, 5))
            reached |= {type(s) for s in schedule.schedulers()}
    missing = sorted(cls.__name__ for cls in expected if not any(issubclass(r, cls) for r in reached))
    assert not missing, f"no YAML config builds {missing}"


# --------------------------------------------------------------- contract
@pytest.mark.parametrize("optimizer_factory", [sgd, adamw_two_groups], ids=["sgd", "adamw-2-groups"])
@pytest.mark.parametrize("name, warmup", variants())
def test_each_scheduler_runs_a_whole_budget_with_its_defaults(name, warmup, optimizer_factory):
    optimizer = optimizer_factory()
    budget = ScheduleLength(4, 5)
    schedule = build(name, warmup, optimizer, budget)
    seen = drive(schedule, optimizer, budget)
    assert len(seen) == 20 and all(math.isfinite(lr) and lr > 0 for lr in seen)
    for group in optimizer.param_groups:  # every group follows the schedule
        assert math.isfinite(group["lr"]) and group["lr"] >= 0


@pytest.mark.parametrize("name, warmup", variants())
def test_each_scheduler_steps_per_batch_on_the_metric_or_per_epoch_by_its_flags(name, warmup):
    info = LR_SCHEDULES[name]
    optimizer = sgd()
    budget = ScheduleLength(4, 5)
    schedule = build(name, warmup, optimizer, budget)
    assert schedule.per_step == info.per_step
    assert (schedule.monitor == "val_loss") == info.needs_metric
    seen = drive(schedule, optimizer, budget)
    changes_within_an_epoch = any(len(set(seen[e * 5:(e + 1) * 5])) > 1 for e in range(4))
    assert changes_within_an_epoch == info.per_step


# One valid, non-default value for every declared parameter (warmup ones aside).
EXAMPLES: dict[str, dict[str, Any]] = {
    "none": {},
    "step": {"step_size": 2, "gamma": 0.5},
    "multistep": {"milestones": [1, 3], "gamma": 0.5},
    "exponential": {"gamma": 0.5},
    "cosine": {"T_max": 2, "eta_min": 0.001},
    "cosine_restarts": {"T_0": 2, "T_mult": 2, "eta_min": 0.001, "cycles": 3},
    "plateau": {"monitor": "val_acc", "mode": "min", "factor": 0.5, "patience": 0, "threshold": 0.01,
                "threshold_mode": "abs", "cooldown": 1, "min_lr": 0.01, "eps": 1e-6},
    "cyclic": {"base_lr_factor": 0.5, "max_lr_factor": 2.0, "step_size_up": 3, "step_size_down": 2, "cycles": 2,
               "mode": "exp_range", "gamma": 0.9, "cycle_momentum": False, "base_momentum": 0.7, "max_momentum": 0.8},
    "onecycle": {"max_lr_factor": 2.0, "total_steps": 30, "pct_start": 0.4, "anneal_strategy": "linear",
                 "div_factor": 10.0, "final_div_factor": 100.0, "three_phase": True, "cycle_momentum": False,
                 "base_momentum": 0.8, "max_momentum": 0.9},
    "constant": {"factor": 0.5, "total_iters": 2},
    "linear": {"start_factor": 0.5, "end_factor": 1.0, "total_iters": 2},
    "polynomial": {"total_iters": 3, "power": 2.0},
    "step_decay": {"factor": 0.25, "every": 2},
    "multiplicative": {"factor": 0.5},
    "chained": {"schedulers": [{"name": "linear"}, {"name": "step", "gamma": 0.5}]},
}
WARMUP_EXAMPLE = {"warmup_epochs": 1, "warmup_start_factor": 0.5}


def test_examples_cover_every_declared_parameter():
    assert EXAMPLES.keys() == LR_SCHEDULES.keys()
    for name, info in LR_SCHEDULES.items():
        assert set(info.params) == set(EXAMPLES[name]) | set(WARMUP_PARAMS), name


@pytest.mark.parametrize("name, key, value", [
    pytest.param(name, key, value, id=f"{name}.{key}")
    for name in LR_SCHEDULES for key, value in {**EXAMPLES[name], **WARMUP_EXAMPLE}.items()
])
def test_every_declared_parameter_is_accepted_by_its_factory(name, key, value):
    assert LR_SCHEDULES[name].params[key].check(value) == value  # valid by its own schema
    seen = lr_per_step({"name": name, key: value})
    assert len(seen) == 20 and all(math.isfinite(lr) and lr >= 0 for lr in seen)  # cosine T_max=2 touches 0


def test_unknown_scheduler_is_an_error_that_lists_the_known_names():
    with pytest.raises(ValueError, match="unknown scheduler 'cosin' \\(did you mean 'cosine'\\?\\); valid: none, step, multistep") as info:
        create_lr_schedule({"name": "cosin"}, sgd(), ScheduleLength(2, 2))
    assert all(name in str(info.value) for name in LR_SCHEDULES)


def test_unknown_or_bad_parameter_is_an_error_that_names_it():
    with pytest.raises(ValueError, match=r"'step' has no parameter 'gama' \(did you mean 'gamma'\?\); its parameters: step_size, gamma, warmup"):
        create_lr_schedule({"name": "step", "gama": 0.5}, sgd(), ScheduleLength(2, 2))
    with pytest.raises(ValueError, match=r"scheduler 'step': gamma must be <= 1.0, got 2.0"):
        create_lr_schedule({"name": "step", "gamma": 2}, sgd(), ScheduleLength(2, 2))
    with pytest.raises(ValueError, match=r"milestones must be strictly increasing, got \[3, 2\]"):
        create_lr_schedule({"name": "multistep", "milestones": [3, 2]}, sgd(), ScheduleLength(4, 2))


@pytest.mark.parametrize("option, path", [
    pytest.param({"name": "step", "gama": 0.5}, "search.scheduler.gama", id="unknown"),
    pytest.param({"name": "step", "gamma": 2.0}, "search.scheduler.gamma", id="out-of-range"),
    pytest.param({"name": "multistep", "milestones": [3, 2]}, "search.scheduler.milestones", id="not-increasing"),
    pytest.param({"name": "chained", "schedulers": ["cosine", "onecycle"]}, "search.scheduler.schedulers",
                 id="not-chainable"),
])
def test_the_spec_and_the_build_reject_a_bad_option_in_the_same_words(option, path):
    with pytest.raises(SpaceError) as spec:
        parse_space({"scheduler": option}, KNOBS)
    with pytest.raises(ValueError) as build:
        create_lr_schedule(option, sgd(), ScheduleLength(4, 5))
    assert spec.value.path == path
    assert str(build.value).endswith(spec.value.message)  # the build's names the owner first: "scheduler 'step'..."


def test_module_examples_run():
    assert doctest.testmod(schedulers_module).failed == 0


# ----------------------------------------------------------- trajectories
def test_none_keeps_the_lr():
    assert set(lr_per_step({"name": "none"})) == {LR}


def test_step_decays_every_step_size_epochs_and_by_default_twice_over_the_budget():
    assert lr_per_epoch({"name": "step", "step_size": 2, "gamma": 0.5}) == pytest.approx([0.1, 0.1, 0.05, 0.05])
    assert lr_per_epoch({"name": "step"}, epochs=6) == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_multistep_decays_at_each_milestone_and_by_default_at_half_and_three_quarters():
    assert lr_per_epoch({"name": "multistep", "milestones": [1, 3], "gamma": 0.5}) == pytest.approx(
        [0.1, 0.05, 0.05, 0.025])
    assert lr_per_epoch({"name": "multistep"}, epochs=8) == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)


def test_exponential_multiplies_by_gamma_every_epoch():
    assert lr_per_epoch({"name": "exponential", "gamma": 0.5}) == pytest.approx([0.1, 0.05, 0.025, 0.0125])


def test_cosine_spans_the_trial_epochs_by_default():
    # 0.1 * (1 + cos(pi * e / 4)) / 2
    assert lr_per_epoch({"name": "cosine"}) == pytest.approx([0.1, 0.0853553390593, 0.05, 0.0146446609407])
    assert lr_per_epoch({"name": "cosine", "eta_min": 0.02}) == pytest.approx(
        [cosine(e, 4, low=0.02) for e in range(4)])


def test_cosine_restarts_doubles_its_period_with_t_mult_2():
    # periods of 2, 4, then 8 epochs: t within the period is 0 1 | 0 1 2 3 | 0 1
    assert lr_per_epoch({"name": "cosine_restarts", "T_0": 2, "T_mult": 2}, epochs=8) == pytest.approx(
        [0.1, 0.05, 0.1, 0.0853553390593, 0.05, 0.0146446609407, 0.1, cosine(1, 8)])


def test_cosine_restarts_fits_its_cycles_into_the_budget_by_default():
    assert lr_per_epoch({"name": "cosine_restarts"}, epochs=8) == pytest.approx([cosine(e % 4, 4) for e in range(8)])
    # T_mult 2 and 3 cycles: 1 + 2 + 4 periods of T_0 = ceil(8 / 7) = 2 epochs, the last one cut
    assert lr_per_epoch({"name": "cosine_restarts", "T_mult": 2, "cycles": 3}, epochs=8) == pytest.approx(
        [cosine(1 * 0, 2), cosine(1, 2), cosine(0, 4), cosine(1, 4), cosine(2, 4), cosine(3, 4), cosine(0, 8),
         cosine(1, 8)])


def test_plateau_reduces_after_patience_epochs_of_a_flat_metric():
    seen = lr_per_epoch({"name": "plateau", "patience": 2, "factor": 0.5}, epochs=8)
    assert seen == pytest.approx([0.1] * 4 + [0.05] * 3 + [0.025])


def test_plateau_does_not_reduce_while_the_loss_improves():
    def improving(epoch):
        return {"val_loss": 1.0 - 0.1 * epoch, "val_acc": 0.5}

    assert lr_per_epoch({"name": "plateau", "patience": 0}, epochs=6, metrics=improving) == [LR] * 6


def test_plateau_on_val_acc_maximizes_it_unless_told_otherwise():
    def rising(epoch):
        return {"val_loss": 1.0, "val_acc": 0.1 + 0.1 * epoch}

    def falling(epoch):
        return {"val_loss": 1.0, "val_acc": 0.9 - 0.1 * epoch}

    config = {"name": "plateau", "monitor": "val_acc", "patience": 1, "factor": 0.5}
    assert lr_per_epoch(config, epochs=5, metrics=rising) == [LR] * 5
    assert lr_per_epoch(config, epochs=5, metrics=falling) == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05])
    assert lr_per_epoch({**config, "mode": "min"}, epochs=5, metrics=rising) == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05])


def test_plateau_patience_defaults_to_a_tenth_of_the_budget():
    seen = lr_per_epoch({"name": "plateau", "factor": 0.5}, epochs=20)
    assert seen.index(0.05) == 4  # patience 2: epochs 1 and 2 are tolerated, epoch 3 is not


def test_plateau_without_its_metric_is_an_error_that_names_it():
    optimizer = sgd()
    schedule = create_lr_schedule({"name": "plateau", "monitor": "val_f1"}, optimizer, ScheduleLength(2, 1))
    with pytest.raises(ValueError, match="plateau monitors 'val_f1', which this epoch did not report "
                                         r"\(reported: train_loss, val_loss\)"):
        schedule.after_epoch({"train_loss": 1.0, "val_loss": 1.0})


def test_cyclic_climbs_and_falls_in_a_triangle_per_batch():
    seen = lr_per_step({"name": "cyclic", "base_lr_factor": 0.2}, epochs=2, steps_per_epoch=5)
    assert seen == pytest.approx([0.02, 0.036, 0.052, 0.068, 0.084, 0.1, 0.084, 0.068, 0.052, 0.036])


def test_cyclic_fits_its_cycles_into_the_budget_and_triangular2_halves_the_second():
    seen = lr_per_step({"name": "cyclic", "base_lr_factor": 0.2, "cycles": 2, "mode": "triangular2"})
    assert (seen[0], seen[5], seen[10], seen[15]) == pytest.approx((0.02, 0.1, 0.02, 0.06))
    seen = lr_per_step({"name": "cyclic", "base_lr_factor": 0.2, "step_size_up": 2, "step_size_down": 3},
                       epochs=2, steps_per_epoch=5)
    assert seen == pytest.approx([0.02, 0.06, 0.1, 0.1 - 0.08 / 3, 0.1 - 0.16 / 3] * 2)


def test_cyclic_cycles_momentum_against_the_lr_when_the_optimizer_has_it():
    optimizer = sgd(momentum=0.9)
    budget = ScheduleLength(2, 5)
    schedule = create_lr_schedule({"name": "cyclic"}, optimizer, budget)
    seen = drive(schedule, optimizer, budget, record=lambda o: (current_lr(o), momentum_of(o)))
    assert seen[0] == pytest.approx((0.01, 0.9)) and seen[5] == pytest.approx((0.1, 0.8))


@pytest.mark.parametrize("name", ["cyclic", "onecycle"])
def test_momentum_cycling_follows_the_optimizer(name):
    budget = ScheduleLength(2, 5)
    adam = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=LR)
    assert create_lr_schedule({"name": name}, adam, budget).scheduler.cycle_momentum  # beta1 cycles
    plain = sgd(momentum=0.0)  # cycling would silently switch momentum on
    assert not create_lr_schedule({"name": name}, plain, budget).scheduler.cycle_momentum
    assert plain.param_groups[0]["momentum"] == 0.0
    adagrad = torch.optim.Adagrad([torch.zeros(1, requires_grad=True)], lr=LR)  # neither momentum nor betas
    drive(create_lr_schedule({"name": name}, adagrad, budget), adagrad, budget)
    with pytest.raises(ValueError, match=f"{name}: cycle_momentum needs an optimizer with momentum or betas; "
                                         "Adagrad has neither"):
        create_lr_schedule({"name": name, "cycle_momentum": True}, adagrad, budget)
    with pytest.raises(ValueError, match="base_momentum <= max_momentum must hold"):
        create_lr_schedule({"name": name, "base_momentum": 0.95, "max_momentum": 0.9}, sgd(), budget)


def test_onecycle_steps_per_batch_peaks_at_the_searched_lr_and_ends_low():
    seen = lr_per_step({"name": "onecycle"})  # 20 steps, 30% rising
    assert seen[0] == pytest.approx(LR / 25)
    assert max(seen) == pytest.approx(LR) and seen.index(max(seen)) == 5
    assert seen[-1] == pytest.approx(LR / 25 / 1e4)
    assert max(lr_per_step({"name": "onecycle", "max_lr_factor": 2.0})) == pytest.approx(2 * LR)


def test_onecycle_linear_trajectory_by_hand():
    seen = lr_per_step({"name": "onecycle", "pct_start": 0.25, "anneal_strategy": "linear",
                        "div_factor": 10.0, "final_div_factor": 1.0})
    # up from 0.01 to 0.1 over 4 steps, then down to 0.01 over 15
    assert seen == pytest.approx([0.01, 0.0325, 0.055, 0.0775, 0.1] + [0.1 - 0.006 * k for k in range(1, 16)])


def test_constant_lowers_the_lr_for_total_iters_epochs():
    assert lr_per_epoch({"name": "constant", "factor": 0.5, "total_iters": 2}) == pytest.approx(
        [0.05, 0.05, 0.1, 0.1])
    assert lr_per_epoch({"name": "constant"}, epochs=8) == pytest.approx([LR / 3] * 2 + [LR] * 6)


def test_linear_decays_to_zero_over_the_budget_by_default():
    assert lr_per_epoch({"name": "linear"}) == pytest.approx([0.1, 0.075, 0.05, 0.025])
    assert lr_per_epoch({"name": "linear", "start_factor": 0.5, "end_factor": 1.0, "total_iters": 2}) == pytest.approx(
        [0.05, 0.075, 0.1, 0.1])


def test_polynomial_follows_its_power_over_the_budget():
    assert lr_per_epoch({"name": "polynomial", "power": 2.0}) == pytest.approx([0.1, 0.05625, 0.025, 0.00625])
    assert lr_per_epoch({"name": "polynomial"}) == pytest.approx([0.1 * (1 - e / 4) ** 0.9 for e in range(4)])


def test_step_decay_is_factor_to_the_epoch_over_every():
    assert lr_per_epoch({"name": "step_decay", "factor": 0.5, "every": 2}, epochs=6) == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_multiplicative_multiplies_by_its_factor_every_epoch():
    assert lr_per_epoch({"name": "multiplicative", "factor": 0.5}) == pytest.approx([0.1, 0.05, 0.025, 0.0125])


def test_chained_multiplies_its_members():
    config = {"name": "chained", "schedulers": [{"name": "constant", "factor": 0.5, "total_iters": 2},
                                                {"name": "exponential", "gamma": 0.9}]}
    # 0.1 * (0.5 for two epochs, then 1) * 0.9 ** epoch
    assert lr_per_epoch(config) == pytest.approx([0.05, 0.045, 0.081, 0.0729])


# ----------------------------------------------------------------- warmup
def test_warmup_then_cosine_over_the_epochs_that_remain():
    seen = lr_per_epoch({"name": "cosine", "warmup_epochs": 2, "warmup_start_factor": 0.5}, epochs=6)
    assert seen == pytest.approx([0.05, 0.075, 0.1, 0.0853553390593, 0.05, 0.0146446609407])


def test_warmup_alone_for_none_then_the_lr_stays():
    seen = lr_per_epoch({"name": "none", "warmup_epochs": 2, "warmup_start_factor": 0.5})
    assert seen == pytest.approx([0.05, 0.075, 0.1, 0.1])


def test_main_schedule_epoch_counts_start_after_the_warmup():
    seen = lr_per_epoch({"name": "multistep", "milestones": [1], "gamma": 0.5, "warmup_epochs": 2,
                         "warmup_start_factor": 0.5})
    assert seen == pytest.approx([0.05, 0.075, 0.1, 0.05])


def test_warmup_hands_multiplicative_the_full_lr():
    # torch's SequentialLR alone would multiply the last warmup lr (0.05) and never get back to 0.1
    seen = lr_per_epoch({"name": "multiplicative", "factor": 0.5, "warmup_epochs": 1, "warmup_start_factor": 0.5})
    assert seen == pytest.approx([0.05, 0.1, 0.05, 0.025])


def test_warmup_ramps_to_the_lr_the_main_schedule_starts_from():
    seen = lr_per_epoch({"name": "constant", "factor": 0.5, "total_iters": 1, "warmup_epochs": 1,
                         "warmup_start_factor": 0.5})
    assert seen == pytest.approx([0.025, 0.05, 0.1, 0.1])


def test_warmup_then_plateau_ignores_the_warmup_epochs_metrics():
    config = {"name": "plateau", "patience": 1, "factor": 0.5, "warmup_epochs": 2, "warmup_start_factor": 0.5}
    # flat metrics: plateau sees epochs 2 (best), 3 (tolerated), 4 (reduce)
    assert lr_per_epoch(config, epochs=6) == pytest.approx([0.05, 0.075, 0.1, 0.1, 0.1, 0.05])


def test_warmup_of_onecycle_counts_optimizer_steps():
    config = {"name": "onecycle", "warmup_epochs": 1, "warmup_start_factor": 0.5, "pct_start": 0.25,
              "anneal_strategy": "linear", "div_factor": 10.0, "final_div_factor": 1.0}
    seen = lr_per_step(config, epochs=3, steps_per_epoch=4)
    # 4 warmup steps up to onecycle's start (0.01), then onecycle over the 8 steps left
    assert seen == pytest.approx([0.005, 0.00625, 0.0075, 0.00875, 0.01, 0.1, 0.085, 0.07, 0.055, 0.04, 0.025, 0.01])


def test_warmup_of_cyclic_counts_optimizer_steps():
    config = {"name": "cyclic", "warmup_epochs": 1, "warmup_start_factor": 0.5, "base_lr_factor": 0.5}
    seen = lr_per_step(config, epochs=2, steps_per_epoch=4)
    assert seen == pytest.approx([0.025, 0.03125, 0.0375, 0.04375, 0.05, 0.075, 0.1, 0.075])


def test_warmup_of_chained_is_one_more_factor_of_the_product():
    config = {"name": "chained", "schedulers": [{"name": "exponential", "gamma": 0.5}], "warmup_epochs": 2,
              "warmup_start_factor": 0.5}
    # 0.1 * (0.5, 0.75, 1, 1) * 0.5 ** epoch
    assert lr_per_epoch(config) == pytest.approx([0.05, 0.0375, 0.025, 0.0125])


# ----------------------------------------------------------------- resume
def roundtrip(state: dict) -> dict:
    """Through a checkpoint file, loaded as the trainable loads it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("name, warmup", variants())
def test_state_dict_mid_run_resumes_the_identical_trajectory(name, warmup):
    budget = ScheduleLength(6, 3)
    record = lambda o: (current_lr(o), momentum_of(o))  # noqa: E731
    optimizer = sgd()
    schedule = build(name, warmup, optimizer, budget)
    drive(schedule, optimizer, budget, stop=8, record=record)  # two epochs and two steps
    saved_optimizer, saved_schedule = roundtrip(optimizer.state_dict()), roundtrip(schedule.state_dict())
    expected = drive(schedule, optimizer, budget, start=8, record=record)

    fresh_optimizer = sgd()
    fresh = build(name, warmup, fresh_optimizer, budget)
    fresh_optimizer.load_state_dict(saved_optimizer)
    fresh.load_state_dict(saved_schedule)
    assert drive(fresh, fresh_optimizer, budget, start=8, record=record) == expected


def test_plateau_resumes_its_count_of_bad_epochs():
    budget = ScheduleLength(6, 1)
    config = {"name": "plateau", "patience": 2, "factor": 0.5}
    optimizer = sgd()
    schedule = create_lr_schedule(config, optimizer, budget)
    drive(schedule, optimizer, budget, stop=3)  # best, then two tolerated epochs
    fresh_optimizer = sgd()
    fresh = create_lr_schedule(config, fresh_optimizer, budget)
    fresh_optimizer.load_state_dict(roundtrip(optimizer.state_dict()))
    fresh.load_state_dict(roundtrip(schedule.state_dict()))
    # the third bad epoch reduces; a plateau that forgot the count would take epoch 3 as its best
    assert drive(fresh, fresh_optimizer, budget, start=3) == pytest.approx([0.1, 0.05, 0.05])


@pytest.mark.parametrize("config", [
    *[pytest.param({"name": name, "warmup_epochs": warmup}, id=name + "+warmup" * warmup)
      for name in LR_SCHEDULES for warmup in (0, 1)],
    pytest.param({"name": "cosine", "eta_min": 0.01}, id="cosine-eta_min"),
    pytest.param({"name": "cosine_restarts", "eta_min": 0.01, "warmup_epochs": 1}, id="cosine_restarts-eta_min"),
    pytest.param({"name": "plateau", "patience": 0, "min_lr": 0.05}, id="plateau-min_lr"),
])
def test_scale_lr_mid_run_continues_as_if_built_with_the_new_lr(config):
    budget = ScheduleLength(6, 3)
    optimizer = sgd(lr=0.1)
    schedule = create_lr_schedule(config, optimizer, budget)
    drive(schedule, optimizer, budget, stop=8)
    for group in optimizer.param_groups:  # what the engine does when PBT doubles the lr
        for key in ("lr", "initial_lr", "max_lr", "min_lr"):
            if key in group:
                group[key] *= 2
    schedule.scale_lr(2.0)
    reference_optimizer = sgd(lr=0.2)
    reference = create_lr_schedule(
        {k: v * 2 if k in ("eta_min", "min_lr") else v for k, v in config.items()}, reference_optimizer, budget)
    drive(reference, reference_optimizer, budget, stop=8)
    assert drive(schedule, optimizer, budget, start=8) == pytest.approx(
        drive(reference, reference_optimizer, budget, start=8), rel=1e-9)


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize("name", ["cosine", "plateau", "onecycle", "chained"])
def test_warmup_as_long_as_the_budget_is_an_error(name):
    with pytest.raises(ValueError, match=f"'{name}': warmup_epochs=4 leaves none of the trial's 4 epochs to the "
                                         "schedule: use warmup_epochs < 4"):
        create_lr_schedule({"name": name, "warmup_epochs": 4}, sgd(), ScheduleLength(4, 5))


@pytest.mark.parametrize("config, budget, message", [
    pytest.param({"name": "onecycle", "pct_start": 1 / 3}, ScheduleLength(1, 3),
                 r"pct_start x total_steps = 0.333333 x 3 = 1 steps, and needs more than 1", id="divides-by-zero"),
    pytest.param({"name": "onecycle", "warmup_epochs": 1}, ScheduleLength(2, 2),
                 r"0.3 x 2 = 0.6 steps.*fewer warmup_epochs", id="warmup-leaves-too-few"),
    pytest.param({"name": "onecycle", "three_phase": True, "pct_start": 0.6}, ScheduleLength(4, 5),
                 "use pct_start < 0.5", id="three-phase"),
    pytest.param({"name": "onecycle", "total_steps": 10}, ScheduleLength(4, 5),
                 "total_steps=10 is fewer than the 20 optimizer steps", id="total-steps-short"),
], )
def test_onecycle_that_the_budget_rules_out_is_an_error_saying_what_to_change(config, budget, message):
    with pytest.raises(ValueError, match=message):
        create_lr_schedule(config, sgd(), budget)


@pytest.mark.parametrize("config, message", [
    pytest.param({"name": "cyclic", "base_lr_factor": 0.5, "max_lr_factor": 0.4},
                 r"base_lr_factor <= max_lr_factor must hold, but got \(base_lr_factor=0.5, max_lr_factor=0.4\)",
                 id="cyclic-inverted"),
    pytest.param({"name": "cyclic", "step_size_up": 2, "cycles": 2}, "give step_size_up or cycles, not both",
                 id="cyclic-two-lengths"),
    pytest.param({"name": "cosine_restarts", "T_0": 2, "cycles": 2}, "give T_0 or cycles, not both",
                 id="restarts-two-lengths"),
])
def test_contradicting_parameters_are_an_error(config, message):
    with pytest.raises(ValueError, match=message):
        create_lr_schedule(config, sgd(), ScheduleLength(4, 5))


def test_an_empty_budget_is_an_error():
    with pytest.raises(ValueError, match="at least one epoch of at least one step"):
        ScheduleLength(0, 5)


CHAINABLE = "step, multistep, exponential, cosine, constant, linear, polynomial, multiplicative"


def test_chainable_families_are_exactly_the_ones_that_scale_the_lr():
    assert ", ".join(n for n, info in LR_SCHEDULES.items() if info.chainable) == CHAINABLE


@pytest.mark.parametrize("name", [n for n, info in LR_SCHEDULES.items() if not info.chainable])
def test_chained_rejects_a_family_it_cannot_chain(name):
    with pytest.raises(ValueError, match=rf"item 1: '{name}' cannot be chained \(.+\); chainable: {CHAINABLE}"):
        create_lr_schedule({"name": "chained", "schedulers": ["exponential", {"name": name}]}, sgd(), ScheduleLength(4, 5))


@pytest.mark.parametrize("items, message", [
    pytest.param([{"name": "cosin"}], rf"item 0: unknown scheduler 'cosin' \(did you mean 'cosine'\?\); valid: {CHAINABLE} \(the chainable ones\)", id="unknown"),
    pytest.param([{"name": "step", "gama": 0.5}], r"item 0 \(step\) has no parameter 'gama' \(did you mean 'gamma'\?\); its parameters: "
                                                  "step_size, gamma$", id="unknown-param"),
    pytest.param(["cosine", {"name": "step", "gamma": 2}], r"item 1 \(step\): gamma must be <= 1.0, got 2",
                 id="bad-value"),
    pytest.param([{"name": "step", "warmup_epochs": 1}], "put warmup_epochs on the chained entry itself",
                 id="warmup-inside"),
    pytest.param([{"name": "step", "gamma": {"uniform": [0.1, 0.5]}}], "gamma must be a fixed value inside chained",
                 id="distribution-inside"),
    pytest.param([{"gamma": 0.5}], "item 0: must be a scheduler name or a mapping with a name", id="no-name"),
    pytest.param([], "must be a list of schedulers to multiply", id="empty"),
    pytest.param("step", "must be a list of schedulers to multiply", id="not-a-list"),
])
def test_chained_rejects_bad_items_naming_the_item_and_the_valid_choices(items, message):
    with pytest.raises(ValueError, match=message):
        ChainSchema().check(items)
    with pytest.raises(ValueError, match=message):
        create_lr_schedule({"name": "chained", "schedulers": items}, sgd(), ScheduleLength(4, 5))


def test_chained_is_validated_by_the_spec_layer_with_the_dotted_path():
    with pytest.raises(SpaceError, match=r"search\.scheduler\.schedulers: item 0: 'onecycle' cannot be chained"):
        parse_space({"scheduler": {"name": "chained", "schedulers": [{"name": "onecycle"}]}}, KNOBS)
    space = parse_space({"scheduler": {"name": "chained", "schedulers": {"choice": [
        ["exponential"], [{"name": "cosine"}, {"name": "step", "gamma": 0.5}]]}}}, KNOBS)
    assert space.parameter_names == ["scheduler.schedulers"]
    configs = [space.nest(flat)["scheduler"] for flat in space.grid()]
    assert configs == [{"name": "chained", "schedulers": [{"name": "exponential"}]},
                       {"name": "chained", "schedulers": [{"name": "cosine"}, {"name": "step", "gamma": 0.5}]}]
    for config in configs:
        assert len(lr_per_step(config)) == 20
