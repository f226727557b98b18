"""Search algorithms and trial schedulers: YAML name -> a small factory, plus the options each accepts.

Registries like the losses: the spec layer checks names and options against them, the
runner builds the chosen ones. This module imports no Ray itself; each factory imports
the Ray class it builds when it is called, so validating a spec never pays for Ray.

Example:
    >>> sorted(TRIAL_SCHEDULERS["asha"].params)
    ['brackets', 'grace_period', 'reduction_factor']
    >>> "optuna" in SEARCH_ALGS and "grid" in SEARCH_ALGS
    True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..schema import Param, fraction, one_of, positive
from ..trial_result import ITERATION, POINT_KEY
from . import compat

if TYPE_CHECKING:  # the spec layer checks names against these registries: it imports this module
    from ..spec.space import SearchSpace


@dataclass(frozen=True)
class SearchSetup:
    """What a search algorithm or trial scheduler is built from (the spec layer makes one).

    Attributes:
        space: The parsed ``search:`` section.
        metric: The objective, e.g. ``val_acc``.
        mode: ``max`` or ``min``.
        epochs: Each trial's budget.
        seed: The search's seed.
        points: Flat configs to try first (``tune.points_to_evaluate``).
        study: Where the Optuna study is kept, ``(storage URL, study name)``; None: in memory.
        warm: Finished Optuna trials of earlier experiments, given to the study first.
    """

    space: SearchSpace
    metric: str
    mode: str
    epochs: int
    seed: int
    points: tuple[dict[str, Any], ...] = ()
    study: tuple[str, str] | None = None
    warm: tuple[Any, ...] = ()


@dataclass(frozen=True)
class StrategyInfo:
    """A registered search algorithm or trial scheduler: ``factory(setup, options)`` and its options."""

    factory: Callable[[SearchSetup, Mapping[str, Any]], Any]
    params: dict[str, Param] = field(default_factory=dict)
    help: str = ""


# ------------------------------------------------------------ search algorithms
def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # TPE's group / multivariate and QMC warn that they are experimental, once per sampler
    # built: before building it, or the warning reaches the user's terminal.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _optuna_search(setup: SearchSetup, sampler: Any) -> Any:
    from ray.tune.search.optuna import OptunaSearch

    if setup.study is not None:
        from .searchers import StudySearch

        storage, name = setup.study
        return StudySearch(space=setup.space.define_by_run, metric=setup.metric, mode=setup.mode, sampler=sampler,
                           points=list(setup.points), storage=storage, study_name=name, epochs=setup.epochs,
                           warm=list(setup.warm))
    return OptunaSearch(space=setup.space.define_by_run, metric=setup.metric, mode=setup.mode, sampler=sampler,
                        points_to_evaluate=list(setup.points) or None)


def _random(setup: SearchSetup, options: Mapping[str, Any]) -> Any:
    import optuna

    _quiet_optuna()
    return _optuna_search(setup, optuna.samplers.RandomSampler(seed=setup.seed))


def _tpe(setup: SearchSetup, options: Mapping[str, Any]) -> Any:
    import optuna

    _quiet_optuna()
    # constant_liar: trials running in parallel count as pessimistic results, so TPE
    # does not propose the same point to every free worker.
    sampler = optuna.samplers.TPESampler(seed=setup.seed, constant_liar=True,
                                         n_startup_trials=options.get("n_startup_trials", 10),
                                         multivariate=options.get("multivariate", True), group=True)
    return _optuna_search(setup, sampler)


def _gp(setup: SearchSetup, options: Mapping[str, Any]) -> Any:
    import optuna

    _quiet_optuna()
    sampler = optuna.samplers.GPSampler(seed=setup.seed, n_startup_trials=options.get("n_startup_trials", 10),
                                        warn_independent_sampling=False)
    return _optuna_search(setup, sampler)


def _cmaes(setup: SearchSetup, options: Mapping[str, Any]) -> Any:
    import optuna

    _quiet_optuna()
    sampler = optuna.samplers.CmaEsSampler(seed=setup.seed, n_startup_trials=options.get("n_startup_trials", 1),
                                           warn_independent_sampling=False)
    return _optuna_search(setup, sampler)


def _qmc(setup: SearchSetup, options: Mapping[str, Any]) -> Any:
    import optuna

    _quiet_optuna()
    sampler = optuna.samplers.QMCSampler(seed=setup.seed, qmc_type=options.get("qmc_type", "sobol"),
                                         scramble=True, warn_independent_sampling=False,
                                         warn_asynchronous_seeding=False)
    return _optuna_search(setup, sampler)


def _grid(setup: SearchSetup, options: Mapping[str, Any]) -> Any:
    from .searchers import PointsSearcher

    return PointsSearcher(setup.space.grid(), metric=setup.metric, mode=setup.mode)


_N_STARTUP = positive(int, "random trials before the model takes over")

SEARCH_ALGS: dict[str, StrategyInfo] = {
    "random": StrategyInfo(_random, help="uniform random sampling (Optuna RandomSampler)"),
    "grid": StrategyInfo(_grid, help="every point of a finite space, once each"),
    "optuna": StrategyInfo(_tpe, {"n_startup_trials": _N_STARTUP, "multivariate": Param(bool)},
                           help="Optuna TPE (handles conditional parameters natively)"),
    "tpe": StrategyInfo(_tpe, {"n_startup_trials": _N_STARTUP, "multivariate": Param(bool)},
                        help="same as optuna"),
    "gp": StrategyInfo(_gp, {"n_startup_trials": _N_STARTUP}, help="Optuna Gaussian-process Bayesian optimization"),
    "cmaes": StrategyInfo(_cmaes, {"n_startup_trials": _N_STARTUP},
                          help="Optuna CMA-ES over the continuous parameters (categorical ones sampled at random)"),
    "qmc": StrategyInfo(_qmc, {"qmc_type": one_of("sobol", "halton")},
                        help="quasi-Monte Carlo (Sobol/Halton) over the continuous parameters"),
}
# Samplers that model only continuous parameters: they need at least one.
# Every search algorithm but grid is an Optuna sampler: its study is kept in a database.
CONTINUOUS_ONLY = ("cmaes", "qmc")


# ------------------------------------------------------------- trial schedulers
def _fifo(setup: SearchSetup, options: Mapping[str, Any]) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def _asha(setup: SearchSetup, options: Mapping[str, Any]) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    # One epoch is one training_iteration. Reduction factor 4 is Ray's default; it beat 2 (our
    # old default) at every target of benchmarks/scheduler_replay.py: fewer rungs stop fewer
    # late bloomers, for less compute (benchmarks/README.md, section 3).
    return ASHAScheduler(time_attr=ITERATION, max_t=setup.epochs,
                         grace_period=options.get("grace_period", 1),
                         reduction_factor=options.get("reduction_factor", 4),
                         brackets=options.get("brackets", 1))


def _hyperband(setup: SearchSetup, options: Mapping[str, Any]) -> Any:
    from ray.tune.schedulers import HyperBandScheduler

    class HyperBand(HyperBandScheduler):
        """Ray's HyperBand; a paused trial it stops is saved as stopped (see :func:`.compat.mark_for_next_snapshot`)."""

        def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
            super().on_trial_remove(tune_controller, trial)
            compat.mark_for_next_snapshot(tune_controller, trial)  # its status changes right after this

    return HyperBand(time_attr=ITERATION, max_t=setup.epochs, reduction_factor=options.get("reduction_factor", 3))


def _median(setup: SearchSetup, options: Mapping[str, Any]) -> Any:
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(time_attr=ITERATION, grace_period=options.get("grace_period", 1),
                              min_samples_required=options.get("min_samples_required", 3))


def _pbt(setup: SearchSetup, options: Mapping[str, Any]) -> Any:
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    mutations = {}
    for name, info in pbt_mutations(setup.space).items():
        low, high = info["low"], info["high"]
        if info["type"] == "int":
            mutations[name] = tune.lograndint(low, high + 1) if info["log"] else tune.randint(low, high + 1)
        else:
            mutations[name] = tune.loguniform(low, high) if info["log"] else tune.uniform(low, high)
    return PopulationBasedTraining(
        time_attr=ITERATION,
        perturbation_interval=options.get("perturbation_interval", default_perturbation_interval(setup.epochs)),
        hyperparam_mutations={POINT_KEY: mutations},
        quantile_fraction=options.get("quantile_fraction", 0.25),
        resample_probability=options.get("resample_probability", 0.25),
    )


def default_perturbation_interval(epochs: int) -> int:
    """Four exploit/explore rounds over the budget, at least one epoch apart."""
    return max(1, epochs // 4)


def pbt_mutations(space: SearchSpace) -> dict[str, dict[str, Any]]:
    """The parameters PBT perturbs: continuous ones that every trial has (not inside an option)."""
    return {name: info for name, info in space.describe().items()
            if info["type"] in ("float", "int") and not info["condition"]}


TRIAL_SCHEDULERS: dict[str, StrategyInfo] = {
    "fifo": StrategyInfo(_fifo, help="run every trial to the end"),
    "asha": StrategyInfo(_asha, {"grace_period": positive(int, "epochs before a trial can be stopped"),
                                 "reduction_factor": Param(float, low=1, low_open=True),
                                 "brackets": positive(int)},
                         help="asynchronous successive halving: stop weak trials at epoch rungs"),
    "hyperband": StrategyInfo(_hyperband, {"reduction_factor": Param(float, low=1, low_open=True)},
                              help="synchronous HyperBand (pauses and resumes trials from checkpoints)"),
    "median": StrategyInfo(_median, {"grace_period": positive(int), "min_samples_required": positive(int)},
                           help="median stopping rule: stop a trial below the median of the others"),
    "pbt": StrategyInfo(_pbt, {"perturbation_interval": positive(int, "epochs between exploit/explore steps"),
                               "quantile_fraction": fraction(low_open=True, high_open=True),
                               "resample_probability": fraction()},
                        help="population based training: mutates the continuous parameters, restoring checkpoints"),
}
