"""Rules that join sections of a spec: small named checks, each testable alone.

Each check takes a spec whose sections passed their own rules and returns the
problems it finds, as ``(dotted path, message)`` pairs. ``SECTION_CHECKS`` need the
sections only; ``SEARCH_CHECKS`` also need the parsed ``search:`` space.

Example:
    >>> from tune_app.spec import validate_spec
    >>> spec = validate_spec({"task": "segmentation", "data": {"dataset": "shapes"},
    ...                       "model": {"name": "smp/Unet", "encoder": "test_resnet"}, "train": {"metric": "val_dice"}})
    >>> metric_fits_task(spec)
    []
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..schema import unknown_name
from ..sweep.strategies import CONTINUOUS_ONLY, pbt_mutations
from ..training import METRICS
from ..training.augment_policies import augment_problem
from ..training.datasets import DataConfig, check_data
from ..training.freeze import check_freeze_depth
from ..training.losses import LOSSES
from ..training.mixing import mixing_problem
from ..training.models import check_model_name, layer_decay_problem_for, regularization_problem, stage_count_for
from ..training.regularization import KNOBS as REGULARIZATION_KNOBS
from ..training.weights import PretrainedWeightsError, exported_config
from .sections import ExperimentSpec, Problem, user_path
from .space import MAX_GRID, Categorical, Conditional, Fixed, IntRange, SearchSpace, SpaceError

# Knobs that have a home outside `search:` too; setting both would be ambiguous.
KNOB_HOMES = {"optimizer": "train.optimizer", "batch_size": "data.batch_size", "hflip": "data.hflip",
              "scale": "data.scale"}

Check = Callable[[ExperimentSpec], list[Problem]]


# ------------------------------------------------------------- sections
def dataset_fits_task(spec: ExperimentSpec) -> list[Problem]:
    """The dataset exists and serves the task (``shapes`` is for segmentation)."""
    try:
        check_data(DataConfig(dataset=spec.data.dataset, task=spec.task))
    except ValueError as exc:
        return [("data.dataset", str(exc))]
    return []


def metric_fits_task(spec: ExperimentSpec) -> list[Problem]:
    """The objective is a metric the task's trials report."""
    known = list(METRICS[spec.task])
    if spec.train.metric not in known:
        return [("train.metric", f"{unknown_name(spec.train.metric, known)} (the metrics a {spec.task} trial "
                                 f"reports)")]
    return []


def model_fits_task(spec: ExperimentSpec) -> list[Problem]:
    """The model exists, serves the task, and has an encoder exactly when it needs one."""
    try:
        check_model_name(spec.model.name, task=spec.task, encoder=spec.model.encoder)
    except ValueError as exc:
        return [("model.encoder" if "encoder" in str(exc) and spec.model.encoder else "model.name", str(exc))]
    return []


def pretrained_fits_model(spec: ExperimentSpec) -> list[Problem]:
    """Weights from a directory are an exported model of this very architecture (``tune-app export``)."""
    pretrained = spec.model.pretrained
    if not isinstance(pretrained, str) or not user_path(pretrained).is_dir():
        return []
    try:
        exported = exported_config(user_path(pretrained))
    except PretrainedWeightsError as exc:
        return [("model.pretrained", str(exc))]
    assert exported is not None
    theirs = (exported.get("model"), exported.get("encoder"))
    if theirs != (spec.model.name, spec.model.encoder):
        shown = theirs[0] if theirs[1] is None else f"{theirs[0]} with encoder {theirs[1]}"
        return [("model.pretrained", f"{pretrained} holds an exported {shown}, not {spec.model.name}"
                                     + (f" with encoder {spec.model.encoder}" if spec.model.encoder else "")
                                     + f"; set model.name: {theirs[0]}"
                                     + (f" and model.encoder: {theirs[1]}" if theirs[1] else ""))]
    return []


SECTION_CHECKS: tuple[Check, ...] = (dataset_fits_task, metric_fits_task, model_fits_task, pretrained_fits_model)


# --------------------------------------------------------------- search
def knobs_set_once(spec: ExperimentSpec) -> list[Problem]:
    """A knob with a home outside ``search:`` (``train.optimizer``) is not set in both places."""
    problems = []
    for knob, home in KNOB_HOMES.items():
        section, field = home.split(".")
        if knob in spec.search and field in getattr(spec, section).model_fields_set:
            problems.append((f"search.{knob}", f"is also set at {home}; set it in one place"))
    return problems


def losses_fit_task(spec: ExperimentSpec) -> list[Problem]:
    """Every loss the search can pick applies to the task."""
    problems = []
    for path, value in _fixed_and_chosen(spec.space, "loss"):
        info = LOSSES.get(value)
        if info is not None and spec.task not in info.tasks:
            problems.append((path, f"loss {value!r} does not apply to task {spec.task!r}; it supports "
                                   f"{', '.join(info.tasks)}"))
    return problems


def freeze_depth_fits_model(spec: ExperimentSpec) -> list[Problem]:
    """No ``freeze_depth`` the search can pick exceeds the model's stages."""
    depths = [d for _, d in _fixed_and_chosen(spec.space, "freeze_depth") if d != "all"]
    if not depths:
        return []
    try:
        stages = stage_count_for(spec.model.name, task=spec.task, encoder=spec.model.encoder)
        check_freeze_depth(max(depths), stages, spec.model.name)
    except ValueError as exc:
        if "freeze_depth" in str(exc):  # a bad model name is reported at model.name already
            return [("search.freeze_depth", str(exc))]
    return []


def regularization_fits_model(spec: ExperimentSpec) -> list[Problem]:
    """``drop_path`` and ``dropout`` above 0 only for a model that has a layer they reach."""
    problems = []
    for knob in REGULARIZATION_KNOBS:
        if not _can_be_on(spec.space, knob, off=0.0):
            continue
        try:
            problem = regularization_problem(spec.model.name, knob, task=spec.task, encoder=spec.model.encoder)
        except ValueError:  # a bad model name is reported at model.name already
            continue
        if problem:
            problems.append((f"search.{knob}", problem))
    return problems


def layer_decay_fits_model(spec: ExperimentSpec) -> list[Problem]:
    """``layer_decay`` below 1 (off) only for a model whose layers timm groups (its ``group_matcher``)."""
    if not _can_be_on(spec.space, "layer_decay", off=1.0):
        return []
    try:
        problem = layer_decay_problem_for(spec.model.name, task=spec.task, encoder=spec.model.encoder)
    except ValueError:  # a bad model name is reported at model.name already
        return []
    return [("search.layer_decay", problem)] if problem else []


def mixing_fits_task_and_loss(spec: ExperimentSpec) -> list[Problem]:
    """``mixup`` and ``cutmix`` above 0 only for classification, with losses that take mixed labels."""
    knobs = [k for k in ("mixup", "cutmix") if _can_be_on(spec.space, k, off=0.0)]
    if not knobs:
        return []
    if problem := mixing_problem(spec.task):
        return [(f"search.{knobs[0]}", problem)]
    return [(path, problem) for path, name in _fixed_and_chosen(spec.space, "loss")
            if (problem := mixing_problem(spec.task, name))]


def augment_fits_task(spec: ExperimentSpec) -> list[Problem]:
    """An ``augment`` policy other than ``none`` only for classification."""
    return [(path, problem) for path, name in _fixed_and_chosen(spec.space, "augment")
            if (problem := augment_problem(spec.task, name))]


def objective_comparable(spec: ExperimentSpec) -> list[Problem]:
    """``val_loss`` cannot rank trials whose losses differ."""
    if spec.train.metric == "val_loss" and spec.space.is_searched("loss"):
        return [("train.metric", "val_loss cannot rank trials that use different losses (their values are not "
                                 "comparable); optimize val_acc or val_f1 instead")]
    return []


def grid_is_finite(spec: ExperimentSpec) -> list[Problem]:
    """Grid search needs a finite space of at most ``MAX_GRID`` points."""
    if spec.tune.search_alg != "grid":
        return []
    try:
        size = spec.space.grid_size()
    except SpaceError as exc:
        return [(exc.path, exc.message)]
    if size > MAX_GRID:
        return [("search", f"the grid has {size} points, more than {MAX_GRID}; narrow it or use search_alg random "
                           f"or optuna")]
    return []


def plateau_monitors_reported(spec: ExperimentSpec) -> list[Problem]:
    """A plateau schedule watches a metric the task's trials report."""
    metrics = METRICS.get(spec.task, {})
    return [(path, f"plateau cannot watch {monitor!r}: a {spec.task} trial reports {', '.join(metrics)}")
            for path, monitor in _option_values(spec.space, "scheduler", "plateau", "monitor")
            if monitor not in metrics]


def warmup_fits_the_budget(spec: ExperimentSpec) -> list[Problem]:
    """An LR schedule's ``warmup_epochs`` leave some of a trial's ``train.epochs`` to the schedule."""
    epochs = spec.train.epochs
    return [(path, f"warmup_epochs {warmup} leaves none of a trial's {epochs} epochs (train.epochs) to the "
                   f"schedule: use warmup_epochs < {epochs}, or more epochs")
            for path, warmup in _option_values(spec.space, "scheduler", None, "warmup_epochs")
            if isinstance(warmup, int) and warmup >= epochs]


def points_fit(spec: ExperimentSpec) -> list[Problem]:
    """``points_to_evaluate`` lie in the space and fit in the trial count."""
    tune = spec.tune
    try:
        points = spec.points_to_evaluate()
    except SpaceError as exc:
        return [(exc.path, exc.message)]
    if points and tune.search_alg == "grid":
        return [("tune.points_to_evaluate", "grid search runs every point anyway; remove the points")]
    if len(points) > tune.num_samples:
        return [("tune.points_to_evaluate", f"has {len(points)} points but num_samples is {tune.num_samples}; "
                                            f"raise num_samples")]
    return []


def sampler_has_continuous_parameters(spec: ExperimentSpec) -> list[Problem]:
    """CMA-ES and QMC model continuous parameters only: the space needs one."""
    search_alg = spec.tune.search_alg
    if search_alg in CONTINUOUS_ONLY and not any(
            info["type"] != "categorical" for info in spec.space.describe().values()):
        return [("tune.search_alg", f"{search_alg} models continuous parameters and this search has none; use "
                                    f"optuna (TPE), random or grid")]
    return []


def pbt_can_evolve(spec: ExperimentSpec) -> list[Problem]:
    """PBT draws its population at random and mutates continuous parameters every trial has."""
    tune = spec.tune
    if tune.trial_scheduler != "pbt":
        return []
    problems = []
    if tune.search_alg != "random":
        problems.append(("tune.search_alg", f"pbt draws its initial population at random and then evolves it "
                                            f"itself; set search_alg: random (got {tune.search_alg})"))
    if not pbt_mutations(spec.space):
        problems.append(("tune.scheduler", "pbt mutates continuous parameters that every trial has (lr, "
                                           "weight_decay, ...); this search has none"))
    return problems


def hyperband_creates_all_trials(spec: ExperimentSpec) -> list[Problem]:
    """HyperBand pauses a whole bracket, so it cannot run under ``max_concurrent``."""
    if spec.tune.trial_scheduler == "hyperband" and spec.tune.max_concurrent:
        return [("tune.max_concurrent", "hyperband pauses trials at each rung until its whole bracket gets there, "
                                        "so it needs every trial created up front; remove max_concurrent "
                                        "(tune.resources still limit what runs at once)")]
    return []


def checkpoints_for_restores(spec: ExperimentSpec) -> list[Problem]:
    """PBT and HyperBand restore trials from checkpoints, PBT at every perturbation."""
    tune = spec.tune
    if tune.trial_scheduler in ("pbt", "hyperband") and tune.checkpoint_every == 0:
        return [("tune.checkpoint_every", f"{tune.trial_scheduler} pauses and restores trials from checkpoints; it "
                                          f"must be >= 1")]
    interval = tune.trial_scheduler_options.get("perturbation_interval")
    if tune.trial_scheduler == "pbt" and interval and tune.checkpoint_every and interval % tune.checkpoint_every:
        return [("tune.checkpoint_every", f"must divide pbt's perturbation_interval ({interval}) so a checkpoint "
                                          f"exists at every perturbation")]
    return []


SEARCH_CHECKS: tuple[Check, ...] = (
    knobs_set_once, losses_fit_task, freeze_depth_fits_model, regularization_fits_model, layer_decay_fits_model,
    mixing_fits_task_and_loss, augment_fits_task, objective_comparable, grid_is_finite,
    plateau_monitors_reported, warmup_fits_the_budget, points_fit, sampler_has_continuous_parameters, pbt_can_evolve,
    hyperband_creates_all_trials, checkpoints_for_restores,
)


# -------------------------------------------------------------- helpers
def _fixed_and_chosen(space: SearchSpace, knob: str) -> list[tuple[str, Any]]:
    """Every value a knob can take: fixed values, choices, range ends, family names (with their path)."""
    node = space.root.get(knob)
    path = f"search.{knob}"
    if node is None:
        return []
    if isinstance(node, Fixed):
        return [(path, node.value)]
    if isinstance(node, Categorical):
        return [(path, v) for v in node.values]
    if isinstance(node, IntRange):
        return [(path, node.low), (path, node.high)]
    if isinstance(node, Conditional):
        return [(path, option.name) for option in node.options]
    return []


def _can_be_on(space: SearchSpace, knob: str, off: float) -> bool:
    """Whether the search can give ``knob`` a value other than ``off`` (it is set, and not only to off)."""
    node = space.root.get(knob)
    return node is not None and not (isinstance(node, (Fixed, Categorical))
                                     and all(v == off for _, v in _fixed_and_chosen(space, knob)))


def _option_values(space: SearchSpace, knob: str, option: str | None, param: str) -> list[tuple[str, Any]]:
    """Values parameter ``param`` of family option ``option`` (e.g. plateau's monitor; None: every option) can
    take; an integer range gives its highest."""
    node = space.root.get(knob)
    found = []
    for i, opt in enumerate(node.options if isinstance(node, Conditional) else ()):
        child = dict(opt.params).get(param) if option in (None, opt.name) else None
        where = f"search.{knob}" + (f".choice[{i}]" if len(node.options) > 1 else "") + f".{param}"
        if isinstance(child, Fixed):
            found.append((where, child.value))
        elif isinstance(child, Categorical):
            found += [(where, v) for v in child.values]
        elif isinstance(child, IntRange):
            found.append((where, child.high))
    return found
