"""LR scheduler registry and the rule for when each one steps.

Every family of ``torch.optim.lr_scheduler`` is reachable from YAML under a short
name, with its parameters declared (type and valid range) so the spec layer rejects a
bad value before any trial starts. Three rules keep one YAML entry valid for any trial:

* Lengths (``T_max``, ``total_iters``, ``total_steps``, cyclic's half cycle, ...)
  default to the trial's own budget: epochs for per-epoch families, optimizer steps
  for per-batch ones (``onecycle``, ``cyclic``).
* Learning rates are relative to the searched ``lr`` where torch wants absolute ones
  (``max_lr_factor``, ``base_lr_factor``).
* Every family takes ``warmup_epochs``: a linear ramp from ``warmup_start_factor`` times
  the lr the main schedule starts from up to that lr (SequentialLR behind a LinearLR;
  counted in optimizer steps for per-batch families; a hand-over for ``plateau``; one
  more factor of the product for ``chained``). The main schedule then gets the budget
  that remains, and its epoch counts (``milestones``, ``step_size``) start after the
  warmup.

Stepping: per batch for ``onecycle`` and ``cyclic``, on the monitored metric for
``plateau``, once per epoch otherwise. In YAML:

.. code-block:: yaml

    scheduler:
      choice:
        - {name: cosine, warmup_epochs: 1}
        - {name: plateau, monitor: val_acc, patience: 2}
        - {name: chained, schedulers: [{name: constant, factor: 0.5, total_iters: 2}, exponential]}

Example:
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> schedule = create_lr_schedule({"name": "step", "step_size": 2, "gamma": 0.5}, opt, ScheduleLength(4, steps_per_epoch=10))
    >>> seen = []
    >>> for epoch in range(4):
    ...     seen.append(current_lr(opt))
    ...     opt.step()
    ...     schedule.after_epoch({"val_loss": 1.0})
    >>> seen
    [0.1, 0.1, 0.05, 0.05]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim import lr_scheduler as lrs

from ..schema import Param, check_options, fraction, non_negative, one_of, positive, unknown_name
from .tasks import METRICS

# Metrics a plateau schedule may watch: the union over tasks.
MONITORS = tuple(dict.fromkeys(m for metrics in METRICS.values() for m in metrics))
WARMUP_START_FACTOR = 0.1


@dataclass(frozen=True)
class ScheduleLength:
    """How long a trial trains: what scheduler lengths default to."""

    epochs: int
    steps_per_epoch: int

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.steps_per_epoch < 1:
            raise ValueError(f"a trial needs at least one epoch of at least one step, got {self}")

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


@dataclass(frozen=True)
class LRScheduleInfo:
    """A registered LR scheduler family and its capabilities.

    Attributes:
        factory: ``factory(optimizer, length, **params)`` -> a torch scheduler or None;
            ``length`` is what remains after the warmup.
        params: The parameters the family accepts from YAML (warmup ones included).
        per_step: Steps after every optimizer step instead of after every epoch.
        needs_metric: Steps on a metric (takes ``monitor`` and ``mode``).
        chainable: Scales the current lr, so ``chained`` may multiply it with others.
        own_warmup: The factory applies ``warmup_epochs`` itself.
        help: One line for ``tune-app list``.
    """

    factory: Callable[..., Any]
    params: dict[str, Param | ChainSchema] = field(default_factory=dict)
    per_step: bool = False
    needs_metric: bool = False
    chainable: bool = False
    own_warmup: bool = False
    help: str = ""


class LRSchedule:
    """A built scheduler plus its stepping rule; the training loop calls both hooks.

    Args:
        scheduler: A torch scheduler, a warmup-then-plateau pair, or None (constant lr).
        per_step: Step after every optimizer step instead of after every epoch.
        monitor: For metric-driven schedules, the metric ``after_epoch`` passes on.
    """

    def __init__(self, scheduler: Any, per_step: bool = False, monitor: str | None = None) -> None:
        self.scheduler = scheduler
        self.per_step = per_step
        self.monitor = monitor

    def after_step(self) -> None:
        """Called after every optimizer step."""
        if self.scheduler is not None and self.per_step:
            self.scheduler.step()

    def after_epoch(self, metrics: Mapping[str, float] | None = None) -> None:
        """Called once per epoch with that epoch's metrics (plateau reads ``monitor``)."""
        if self.scheduler is None or self.per_step:
            return
        if self.monitor is None:
            self.scheduler.step()
            return
        if not metrics or self.monitor not in metrics:
            reported = ", ".join(metrics or {}) or "nothing"
            raise ValueError(f"plateau monitors {self.monitor!r}, which this epoch did not report "
                             f"(reported: {reported}); set the scheduler's monitor to one of them")
        self.scheduler.step(float(metrics[self.monitor]))

    def state_dict(self) -> dict[str, Any]:
        return {} if self.scheduler is None else self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)

    def scale_lr(self, ratio: float | Sequence[float]) -> None:
        """Rescale every absolute lr the schedulers hold, keeping the schedule's shape.

        For PBT, which restarts a trial from another's checkpoint with a perturbed lr;
        ``ratio`` is one number, or one per parameter group (their lr scales perturbed too).
        The optimizer's groups (``lr``, ``initial_lr``, OneCycle's ``max_lr``/``min_lr``)
        are the caller's to scale.
        """
        ratios = list(ratio) if isinstance(ratio, Sequence) else None
        for scheduler in self.schedulers():
            for name in ("base_lrs", "max_lrs", "min_lrs", "_last_lr"):
                values = getattr(scheduler, name, None)
                if isinstance(values, list):
                    each = ratios or [ratio] * len(values)
                    setattr(scheduler, name, [value * r for value, r in zip(values, each, strict=True)])
            for name in ("eta_min", "default_min_lr"):  # one floor for every group: the first group's ratio
                if isinstance(getattr(scheduler, name, None), (int, float)):
                    setattr(scheduler, name, getattr(scheduler, name) * (ratios[0] if ratios else ratio))

    def schedulers(self) -> list[Any]:
        """Every scheduler object in this schedule, outermost first, nested members included."""
        found, todo = [], [self.scheduler] if self.scheduler is not None else []
        while todo:
            scheduler = todo.pop(0)
            found.append(scheduler)
            if isinstance(scheduler, _WarmupThenPlateau):
                todo += [scheduler.warmup, scheduler.plateau]
            elif isinstance(scheduler, (lrs.SequentialLR, lrs.ChainedScheduler)):
                todo += list(scheduler._schedulers)
        return found


class _WarmupThenPlateau:
    """A LinearLR warmup, then ReduceLROnPlateau (SequentialLR cannot pass a metric on).

    The metrics of warmup epochs are ignored: a rising lr makes them incomparable.
    """

    def __init__(self, warmup: lrs.LinearLR, plateau: lrs.ReduceLROnPlateau) -> None:
        self.warmup = warmup
        self.plateau = plateau

    def step(self, metric: float) -> None:
        if self.warmup.last_epoch < self.warmup.total_iters:
            self.warmup.step()
        else:
            self.plateau.step(metric)

    def state_dict(self) -> dict[str, Any]:
        return {"warmup": self.warmup.state_dict(), "plateau": self.plateau.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.warmup.load_state_dict(state["warmup"])
        self.plateau.load_state_dict(state["plateau"])


# ----------------------------------------------------------------- lr rules
# Callable objects, not lambdas: torch saves their __dict__ in the scheduler state.
class _ConstantFactor:
    """MultiplicativeLR's rule: the same factor every epoch."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def __call__(self, epoch: int) -> float:
        return self.factor


class _StepDecay:
    """LambdaLR's rule for ``step_decay``: ``factor ** (epoch // every)``."""

    def __init__(self, factor: float, every: int) -> None:
        self.factor = factor
        self.every = every

    def __call__(self, epoch: int) -> float:
        return self.factor ** (epoch // self.every)


class _MultiplicativeLR(lrs.MultiplicativeLR):
    """MultiplicativeLR with a closed form, which SequentialLR uses to hand over after a warmup.

    Without it the hand-over multiplies the last warmup lr, so the full lr never comes back.
    """

    def _get_closed_form_lr(self) -> list[float]:
        return [base * rule.factor ** self.last_epoch for base, rule in zip(self.base_lrs, self.lr_lambdas)]


# ---------------------------------------------------------------- factories
def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _searched_lrs(optimizer: Optimizer) -> list[float]:
    # Called before any scheduler touched the fresh optimizer: its lrs are the searched ones.
    return [float(group["lr"]) for group in optimizer.param_groups]


def _momentum_cycling(optimizer: Optimizer, requested: bool | None, family: str,
                      base_momentum: float, max_momentum: float) -> bool:
    """Whether to cycle momentum: by default only where the optimizer really uses it."""
    if base_momentum > max_momentum:
        raise ValueError(f"{family}: base_momentum <= max_momentum must hold, "
                         f"but got (base_momentum={base_momentum}, max_momentum={max_momentum})")
    supported = "momentum" in optimizer.defaults or "betas" in optimizer.defaults
    if requested and not supported:
        raise ValueError(f"{family}: cycle_momentum needs an optimizer with momentum or betas; "
                         f"{type(optimizer).__name__} has neither: set cycle_momentum: false or leave it out")
    if requested is None:  # SGD with momentum 0 would silently gain momentum
        return "betas" in optimizer.defaults or all(g.get("momentum", 0) > 0 for g in optimizer.param_groups)
    return requested


def _none(optimizer: Optimizer, length: ScheduleLength) -> None:
    return None


def _step(optimizer: Optimizer, length: ScheduleLength, step_size: int | None = None, gamma: float = 0.1) -> lrs.StepLR:
    return lrs.StepLR(optimizer, step_size or _ceil_div(length.epochs, 3), gamma)


def _multistep(optimizer: Optimizer, length: ScheduleLength, milestones: list[int] | None = None,
               gamma: float = 0.1) -> lrs.MultiStepLR:
    if milestones is None:  # half and three quarters of the budget
        milestones = sorted({max(1, int(length.epochs * f)) for f in (0.5, 0.75)})
    return lrs.MultiStepLR(optimizer, milestones, gamma)


def _exponential(optimizer: Optimizer, length: ScheduleLength, gamma: float = 0.9) -> lrs.ExponentialLR:
    return lrs.ExponentialLR(optimizer, gamma)


def _cosine(optimizer: Optimizer, length: ScheduleLength, T_max: int | None = None,
            eta_min: float = 0.0) -> lrs.CosineAnnealingLR:
    return lrs.CosineAnnealingLR(optimizer, T_max or length.epochs, eta_min)


def _cosine_restarts(optimizer: Optimizer, length: ScheduleLength, T_0: int | None = None, T_mult: int = 1,
                     eta_min: float = 0.0, cycles: int | None = None) -> lrs.CosineAnnealingWarmRestarts:
    if T_0 is not None and cycles is not None:
        raise ValueError("cosine_restarts: give T_0 or cycles, not both")
    if T_0 is None:  # the first period such that `cycles` periods cover the budget (the last one may be cut)
        periods = sum(T_mult**i for i in range(cycles or 2))
        T_0 = max(1, _ceil_div(length.epochs, periods))
    return lrs.CosineAnnealingWarmRestarts(optimizer, T_0, T_mult, eta_min)


def _plateau(optimizer: Optimizer, length: ScheduleLength, mode: str = "min", factor: float = 0.1,
             patience: int | None = None, threshold: float = 1e-4, threshold_mode: str = "rel",
             cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8) -> lrs.ReduceLROnPlateau:
    if patience is None:  # torch's 10 at 100 epochs; short fine-tuning runs need less
        patience = max(1, round(length.epochs / 10))
    return lrs.ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience, threshold=threshold,
                                 threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr, eps=eps)


def _cyclic(optimizer: Optimizer, length: ScheduleLength, base_lr_factor: float = 0.1, max_lr_factor: float = 1.0,
            step_size_up: int | None = None, step_size_down: int | None = None, cycles: int | None = None,
            mode: str = "triangular", gamma: float = 1.0, cycle_momentum: bool | None = None,
            base_momentum: float = 0.8, max_momentum: float = 0.9) -> lrs.CyclicLR:
    if base_lr_factor > max_lr_factor:
        raise ValueError(f"cyclic: base_lr_factor <= max_lr_factor must hold, "
                         f"but got (base_lr_factor={base_lr_factor}, max_lr_factor={max_lr_factor})")
    if step_size_up is not None and cycles is not None:
        raise ValueError("cyclic: give step_size_up or cycles, not both")
    if step_size_up is None:  # `cycles` whole triangles over the budget
        step_size_up = max(1, _ceil_div(length.total_steps, 2 * (cycles or 1)))
    searched = _searched_lrs(optimizer)
    return lrs.CyclicLR(
        optimizer,
        base_lr=[lr * base_lr_factor for lr in searched],
        max_lr=[lr * max_lr_factor for lr in searched],
        step_size_up=step_size_up,
        step_size_down=step_size_down,
        mode=mode,
        gamma=gamma,
        cycle_momentum=_momentum_cycling(optimizer, cycle_momentum, "cyclic", base_momentum, max_momentum),
        base_momentum=base_momentum,
        max_momentum=max_momentum,
    )


def _onecycle(optimizer: Optimizer, length: ScheduleLength, max_lr_factor: float = 1.0, total_steps: int | None = None,
              pct_start: float = 0.3, anneal_strategy: str = "cos", div_factor: float = 25.0,
              final_div_factor: float = 1e4, three_phase: bool = False, cycle_momentum: bool | None = None,
              base_momentum: float = 0.85, max_momentum: float = 0.95) -> lrs.OneCycleLR:
    steps = length.total_steps
    if total_steps is not None and total_steps < steps:
        raise ValueError(f"onecycle: total_steps={total_steps} is fewer than the {steps} optimizer steps it must "
                         f"cover (after any warmup), and OneCycleLR cannot step past its end: leave total_steps "
                         f"out (default: the budget) or raise it")
    total = total_steps or steps
    # torch interpolates each phase over (its end - its start) steps; a phase of length <= 0 divides by zero
    up = pct_start * total
    if up <= 1:
        raise ValueError(f"onecycle: the lr rises over pct_start x total_steps = {pct_start:g} x {total} = {up:g} "
                         f"steps, and needs more than 1: raise pct_start, or give the trial more optimizer steps "
                         f"(more epochs, a smaller batch size, fewer warmup_epochs)")
    if three_phase and total + 1 - 2 * up <= 0:
        raise ValueError(f"onecycle: three_phase spends 2 x pct_start of the steps rising and falling, so "
                         f"pct_start={pct_start:g} leaves no final phase: use pct_start < 0.5")
    # The searched lr is the peak; max_lr_factor scales it without a second lr knob.
    return lrs.OneCycleLR(
        optimizer,
        max_lr=[lr * max_lr_factor for lr in _searched_lrs(optimizer)],
        total_steps=total,
        pct_start=pct_start,
        anneal_strategy=anneal_strategy,
        cycle_momentum=_momentum_cycling(optimizer, cycle_momentum, "onecycle", base_momentum, max_momentum),
        base_momentum=base_momentum,
        max_momentum=max_momentum,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        three_phase=three_phase,
    )


def _constant(optimizer: Optimizer, length: ScheduleLength, factor: float = 1 / 3,
              total_iters: int | None = None) -> lrs.ConstantLR:
    return lrs.ConstantLR(optimizer, factor, total_iters or max(1, length.epochs // 4))


def _linear(optimizer: Optimizer, length: ScheduleLength, start_factor: float = 1.0, end_factor: float = 0.0,
            total_iters: int | None = None) -> lrs.LinearLR:
    return lrs.LinearLR(optimizer, start_factor, end_factor, total_iters or length.epochs)


def _polynomial(optimizer: Optimizer, length: ScheduleLength, total_iters: int | None = None,
                power: float = 0.9) -> lrs.PolynomialLR:
    return lrs.PolynomialLR(optimizer, total_iters or length.epochs, power)


def _step_decay(optimizer: Optimizer, length: ScheduleLength, factor: float = 0.5, every: int | None = None) -> lrs.LambdaLR:
    return lrs.LambdaLR(optimizer, _StepDecay(factor, every or _ceil_div(length.epochs, 3)))


def _multiplicative(optimizer: Optimizer, length: ScheduleLength, factor: float = 0.9) -> lrs.MultiplicativeLR:
    return _MultiplicativeLR(optimizer, _ConstantFactor(factor))


def _chained(optimizer: Optimizer, length: ScheduleLength, schedulers: list[dict[str, Any]] | None = None,
             warmup_epochs: int = 0, warmup_start_factor: float = WARMUP_START_FACTOR) -> lrs.ChainedScheduler:
    members = []
    for item in schedulers or DEFAULT_CHAIN:
        params = dict(item)
        members.append(LR_SCHEDULES[params.pop("name")].factory(optimizer, length, **params))
    # ChainedScheduler multiplies its members, so the warmup is one more factor and the
    # members span the whole budget (they run during the warmup too).
    if warmup_epochs:
        members.insert(0, lrs.LinearLR(optimizer, warmup_start_factor, 1.0, warmup_epochs))
    return lrs.ChainedScheduler(members, optimizer)


# ------------------------------------------------------------------ schemas
def _increasing(value: Any) -> Any:
    if isinstance(value, list) and any(not a < b for a, b in itertools.pairwise(value)):
        raise ValueError(f"must be strictly increasing, got {value!r}")
    return value


def _why_not_chainable(name: str, info: LRScheduleInfo) -> str:
    if info.per_step:
        return "it steps every batch, while the chain steps every epoch"
    if info.needs_metric:
        return "it steps on a metric, which ChainedScheduler cannot pass on"
    return {"none": "it is no scheduler: leave it out",
            "chained": "chains do not nest: list its members here"}.get(
        name, "it sets the lr outright instead of scaling it, which would undo the others")


class ChainSchema:
    """Schema of ``chained``'s ``schedulers`` list, with the duck-typed interface of :class:`Param`.

    Items are names or ``{name: ..., params}`` mappings of chainable families, with fixed
    values (search over whole lists with ``choice``). ``check`` returns them as mappings.

    Example:
        >>> ChainSchema().check(["exponential", {"name": "step", "gamma": 0.5}])
        [{'name': 'exponential'}, {'name': 'step', 'gamma': 0.5}]
    """

    kind = list

    def check(self, value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not value:
            raise ValueError(f"must be {self.describe()}, got {value!r}")
        return [self._check_item(i, item) for i, item in enumerate(value)]

    def _check_item(self, i: int, item: Any) -> dict[str, Any]:
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise ValueError(f"item {i}: must be a scheduler name or a mapping with a name, got {item!r}")
        params = dict(item)
        name = params.pop("name")
        info = LR_SCHEDULES.get(name)
        if info is None:
            raise ValueError(f"item {i}: {unknown_name(name, _chainable(), 'scheduler')} (the chainable ones)")
        if not info.chainable:
            raise ValueError(f"item {i}: {name!r} cannot be chained ({_why_not_chainable(name, info)}); "
                             f"chainable: {', '.join(_chainable())}")
        for key, value in params.items():
            if key in WARMUP_PARAMS:
                raise ValueError(f"item {i} ({name}): put {key} on the chained entry itself; "
                                 f"it warms up the whole chain")
            if isinstance(value, Mapping):
                raise ValueError(f"item {i} ({name}): {key} must be a fixed value inside chained, got {value!r}; "
                                 f"to search, write choice: over whole schedulers lists")
        own = {k: p for k, p in info.params.items() if k not in WARMUP_PARAMS}
        return {"name": name, **check_options(f"item {i} ({name})", own, params)}

    def describe(self) -> str:
        return f"a list of schedulers to multiply, each a name or {{name: ..., params}}, from {', '.join(_chainable())}"


def _chainable() -> list[str]:
    return [name for name, info in LR_SCHEDULES.items() if info.chainable]


# ----------------------------------------------------------------- registry
WARMUP_PARAMS: dict[str, Param] = {
    "warmup_epochs": Param(int, low=0, help="epochs of linear warmup before the schedule (0: none)"),
    "warmup_start_factor": fraction(low_open=True, help=f"the warmup starts at this times the lr "
                                                        f"(default {WARMUP_START_FACTOR})"),
}
DECAY = fraction(low_open=True, help="factor applied at each decay")
EPOCHS = positive(int)
MOMENTUM = Param(float, low=0.0, high=1.0, high_open=True)
CYCLE_MOMENTUM = Param(bool, help="cycle momentum / beta1 against the lr; default: if the optimizer uses momentum")
DEFAULT_CHAIN: list[dict[str, Any]] = [{"name": "constant"}, {"name": "exponential"}]


def _family(factory: Callable[..., Any], params: dict[str, Any], help: str, **flags: bool) -> LRScheduleInfo:
    return LRScheduleInfo(factory, {**params, **WARMUP_PARAMS}, help=help, **flags)


LR_SCHEDULES: dict[str, LRScheduleInfo] = {
    "none": _family(_none, {}, "constant learning rate"),
    "step": _family(_step, {
        "step_size": positive(int, "epochs between decays; default: a third of the budget"),
        "gamma": DECAY,
    }, "StepLR: lr * gamma every step_size epochs", chainable=True),
    "multistep": _family(_multistep, {
        "milestones": Param(list, item=EPOCHS, coerce=_increasing,
                            help="epochs at which to decay; default: half and three quarters of the budget"),
        "gamma": DECAY,
    }, "MultiStepLR: lr * gamma at each milestone epoch", chainable=True),
    "exponential": _family(_exponential, {"gamma": DECAY}, "ExponentialLR: lr * gamma every epoch", chainable=True),
    "cosine": _family(_cosine, {
        "T_max": positive(int, "epochs per half cosine; default: the budget"),
        "eta_min": non_negative(help="lowest lr (absolute)"),
    }, "CosineAnnealingLR over the trial's epochs", chainable=True),
    "cosine_restarts": _family(_cosine_restarts, {
        "T_0": positive(int, "epochs of the first cycle; default: from cycles"),
        "T_mult": Param(int, low=1, help="each cycle is T_mult times longer"),
        "eta_min": non_negative(help="lowest lr (absolute)"),
        "cycles": positive(int, "cycles over the budget, the last one possibly cut (default 2); or give T_0"),
    }, "CosineAnnealingWarmRestarts (SGDR), restarting per epoch"),
    "plateau": _family(_plateau, {
        "monitor": one_of(*MONITORS, help="metric to watch; default val_loss"),
        "mode": one_of("min", "max", help="default: min for *loss metrics, else max"),
        "factor": fraction(low_open=True, high_open=True, help="lr * factor on a plateau"),
        "patience": non_negative(int, "epochs without improvement before a decay; default: a tenth of the budget"),
        "threshold": non_negative(help="smallest change that counts as an improvement"),
        "threshold_mode": one_of("rel", "abs"),
        "cooldown": non_negative(int, "epochs to wait after a decay"),
        "min_lr": non_negative(help="lowest lr (absolute)"),
        "eps": non_negative(help="smaller lr changes are skipped"),
    }, "ReduceLROnPlateau on a validation metric", needs_metric=True),
    "cyclic": _family(_cyclic, {
        "base_lr_factor": positive(help="lowest lr = lr * base_lr_factor (default 0.1)"),
        "max_lr_factor": positive(help="highest lr = lr * max_lr_factor (default 1)"),
        "step_size_up": positive(int, "optimizer steps of the rising half; default: from cycles"),
        "step_size_down": positive(int, "optimizer steps of the falling half; default: step_size_up"),
        "cycles": positive(int, "whole cycles over the budget (default 1); or give step_size_up"),
        "mode": one_of("triangular", "triangular2", "exp_range"),
        "gamma": fraction(low_open=True, help="exp_range: amplitude * gamma per step"),
        "cycle_momentum": CYCLE_MOMENTUM,
        "base_momentum": MOMENTUM,
        "max_momentum": MOMENTUM,
    }, "CyclicLR between lr * base_lr_factor and lr * max_lr_factor, per batch", per_step=True),
    "onecycle": _family(_onecycle, {
        "max_lr_factor": positive(help="peak lr = lr * max_lr_factor"),
        "total_steps": positive(int, "optimizer steps of the cycle; default: the budget"),
        "pct_start": fraction(low_open=True, high_open=True),
        "anneal_strategy": one_of("cos", "linear"),
        "div_factor": positive(help="the lr starts at peak / div_factor"),
        "final_div_factor": positive(help="the lr ends at start / final_div_factor"),
        "three_phase": Param(bool),
        "cycle_momentum": CYCLE_MOMENTUM,
        "base_momentum": MOMENTUM,
        "max_momentum": MOMENTUM,
    }, "OneCycleLR over the trial's optimizer steps, peaking at the searched lr, per batch", per_step=True),
    "constant": _family(_constant, {
        "factor": fraction(low_open=True, help="lr * factor until total_iters"),
        "total_iters": positive(int, "epochs at the lower lr; default: a quarter of the budget"),
    }, "ConstantLR: lr * factor for total_iters epochs, then lr", chainable=True),
    "linear": _family(_linear, {
        "start_factor": fraction(low_open=True),
        "end_factor": fraction(),
        "total_iters": positive(int, "epochs of the ramp; default: the budget"),
    }, "LinearLR from lr * start_factor to lr * end_factor (default: decay to 0)", chainable=True),
    "polynomial": _family(_polynomial, {
        "total_iters": positive(int, "epochs to reach 0; default: the budget"),
        "power": non_negative(help="default 0.9"),
    }, "PolynomialLR: lr * (1 - epoch / total_iters) ** power", chainable=True),
    "step_decay": _family(_step_decay, {
        "factor": DECAY,
        "every": positive(int, "epochs between decays; default: a third of the budget"),
    }, "LambdaLR rule lr * factor ** (epoch // every)"),
    "multiplicative": _family(_multiplicative, {"factor": DECAY},
                              "MultiplicativeLR: lr * factor every epoch", chainable=True),
    "chained": _family(_chained, {"schedulers": ChainSchema()},
                       "ChainedScheduler: the product of chainable schedulers", own_warmup=True),
}


# -------------------------------------------------------------------- build
def create_lr_schedule(config: Mapping[str, Any], optimizer: Optimizer, length: ScheduleLength) -> LRSchedule:
    """Build the schedule named by ``config["name"]`` for a fresh ``optimizer`` and ``length``.

    Raises:
        ValueError: An unknown name or parameter, a bad value, or a combination the
            budget rules out; the message says what to change.
    """
    params = dict(config)
    name = params.pop("name", None)
    info = LR_SCHEDULES.get(name)  # type: ignore[arg-type]
    if info is None:
        raise ValueError(unknown_name(name, LR_SCHEDULES, "scheduler"))
    params = check_options(f"scheduler {name!r}", info.params, params)
    warmup = params.pop("warmup_epochs", 0)
    start_factor = params.pop("warmup_start_factor", WARMUP_START_FACTOR)
    if warmup >= length.epochs:
        raise ValueError(f"scheduler {name!r}: warmup_epochs={warmup} leaves none of the trial's {length.epochs} "
                         f"epochs to the schedule: use warmup_epochs < {length.epochs}")
    monitor = None
    if info.needs_metric:
        monitor = params.pop("monitor", "val_loss")
        params.setdefault("mode", "min" if monitor.endswith("loss") else "max")
    if info.own_warmup:
        params.update(warmup_epochs=warmup, warmup_start_factor=start_factor)
        return LRSchedule(info.factory(optimizer, length, **params), info.per_step, monitor)

    main = info.factory(optimizer, ScheduleLength(length.epochs - warmup, length.steps_per_epoch), **params)
    if not warmup:
        return LRSchedule(main, info.per_step, monitor)
    iters = warmup * length.steps_per_epoch if info.per_step else warmup
    ramp = _warmup(optimizer, iters, start_factor)
    if main is None:
        scheduler: Any = ramp
    elif info.needs_metric:
        scheduler = _WarmupThenPlateau(ramp, main)
    else:
        scheduler = lrs.SequentialLR(optimizer, [ramp, main], milestones=[iters])
    return LRSchedule(scheduler, info.per_step, monitor)


def _warmup(optimizer: Optimizer, iters: int, start_factor: float) -> lrs.LinearLR:
    """A linear ramp up to the lr the main schedule (built first) starts from."""
    group = optimizer.param_groups[0]
    # e.g. ConstantLR starts at lr * factor, OneCycleLR at peak / div_factor
    reach = min(1.0, float(group["lr"]) / float(group.get("initial_lr", group["lr"])))
    return lrs.LinearLR(optimizer, start_factor * reach, reach, iters)


def current_lr(optimizer: Optimizer) -> float:
    """The schedule's learning rate now: the first parameter group's, over its ``lr_scale`` (layer decay, the
    head's multiple) when it has one."""
    group = optimizer.param_groups[0]
    lr = group["lr"]
    return float(lr.item() if isinstance(lr, torch.Tensor) else lr) / float(group.get("lr_scale", 1.0))
