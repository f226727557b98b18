"""LR scheduler registry and the rule for when each one steps.

Each entry knows its parameters and whether it steps once per optimizer step
(OneCycle) or once per epoch. Lengths such as ``T_max`` and ``total_steps``
default to the trial's own budget, so one YAML entry fits any number of epochs.

Example:
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> sched = create_scheduler({"name": "step", "step_size": 2}, opt, Budget(epochs=4, steps_per_epoch=10))
    >>> sched.per_step
    False
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch.optim import Optimizer
from torch.optim import lr_scheduler as lrs

from .params import Param, fraction, non_negative, one_of, positive


@dataclass(frozen=True)
class Budget:
    """How long a trial trains: what scheduler lengths default to."""

    epochs: int
    steps_per_epoch: int

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


@dataclass(frozen=True)
class SchedulerInfo:
    """A registered LR scheduler family.

    Attributes:
        factory: ``factory(optimizer, budget, **params)`` -> a torch scheduler or None.
        params: The parameters the family accepts from YAML.
        per_step: Steps after every optimizer step instead of after every epoch.
    """

    factory: Callable[..., Any]
    params: dict[str, Param] = field(default_factory=dict)
    per_step: bool = False
    help: str = ""


@dataclass
class LRSchedule:
    """A built scheduler plus its stepping rule; the training loop calls both hooks."""

    scheduler: Any
    per_step: bool

    def after_step(self) -> None:
        if self.scheduler is not None and self.per_step:
            self.scheduler.step()

    def after_epoch(self, metrics: dict[str, float] | None = None) -> None:
        """Called once per epoch with that epoch's metrics (ReduceLROnPlateau-style families read them)."""
        if self.scheduler is not None and not self.per_step:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {} if self.scheduler is None else self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)


def _none(optimizer: Optimizer, budget: Budget) -> None:
    return None


def _cosine(optimizer: Optimizer, budget: Budget, T_max: int | None = None, eta_min: float = 0.0):
    return lrs.CosineAnnealingLR(optimizer, T_max=T_max or budget.epochs, eta_min=eta_min)


def _step(optimizer: Optimizer, budget: Budget, step_size: int = 1, gamma: float = 0.1):
    return lrs.StepLR(optimizer, step_size=step_size, gamma=gamma)


def _onecycle(
    optimizer: Optimizer,
    budget: Budget,
    max_lr_factor: float = 1.0,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
):
    # The searched `lr` is the peak; max_lr_factor scales it without a second lr knob.
    max_lr = [group["lr"] * max_lr_factor for group in optimizer.param_groups]
    return lrs.OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=budget.total_steps,
        pct_start=pct_start,
        anneal_strategy=anneal_strategy,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )


SCHEDULERS: dict[str, SchedulerInfo] = {
    "none": SchedulerInfo(_none, help="constant learning rate"),
    "cosine": SchedulerInfo(
        _cosine,
        {"T_max": positive(int, "epochs per half cosine; default: the trial's epochs"), "eta_min": non_negative()},
        help="CosineAnnealingLR over the trial's epochs",
    ),
    "step": SchedulerInfo(
        _step,
        {"step_size": positive(int, "epochs between decays"), "gamma": positive(help="decay factor")},
        help="StepLR: lr * gamma every step_size epochs",
    ),
    "onecycle": SchedulerInfo(
        _onecycle,
        {
            "max_lr_factor": positive(help="peak lr = lr * max_lr_factor"),
            "pct_start": fraction(low_open=True, high_open=True),
            "anneal_strategy": one_of("cos", "linear"),
            "div_factor": positive(),
            "final_div_factor": positive(),
        },
        per_step=True,
        help="OneCycleLR over the trial's total optimizer steps (steps per batch)",
    ),
}


def create_scheduler(config: dict[str, Any], optimizer: Optimizer, budget: Budget) -> LRSchedule:
    """Build the scheduler named by ``config["name"]`` for ``optimizer`` and ``budget``."""
    kwargs = dict(config)
    name = kwargs.pop("name")
    info = SCHEDULERS.get(name)
    if info is None:
        raise ValueError(f"unknown scheduler {name!r}; known: {', '.join(SCHEDULERS)}")
    return LRSchedule(info.factory(optimizer, budget, **kwargs), info.per_step)


def current_lr(optimizer: Optimizer) -> float:
    """The learning rate of the first parameter group."""
    lr = optimizer.param_groups[0]["lr"]
    return float(lr.item() if isinstance(lr, torch.Tensor) else lr)
