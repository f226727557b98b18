"""Ray Tune assembly: search algorithms, trial schedulers, resources, storage, resume.

With ``cluster.py`` and ``trainable.py`` the only code that imports Ray, lazily, so
validating a spec does not pay for importing Ray. Search algorithms and trial
schedulers are registries like the losses: a YAML name -> a small factory, plus the
options each one accepts (checked by the spec layer like any other parameter).
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .cluster import ray_session, trial_resources
from .location import Location
from .report.results import POINT_KEY, trial_params
from .training.params import Param, fraction, one_of, positive

if TYPE_CHECKING:  # the spec layer imports this module, not the other way round
    from .spec import ExperimentSpec



@dataclass(frozen=True)
class StrategyInfo:
    """A registered search algorithm or trial scheduler: factory(spec, options) and its options."""

    factory: Callable[["ExperimentSpec", dict[str, Any]], Any]
    params: dict[str, Param] = field(default_factory=dict)
    help: str = ""


# ------------------------------------------------------------ search algorithms
def _optuna_search(spec: "ExperimentSpec", sampler: Any) -> Any:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # TPE's group=True, QMC
    return OptunaSearch(space=spec.space.define_by_run, metric=spec.metric, mode=spec.mode, sampler=sampler,
                        points_to_evaluate=spec.points_to_evaluate() or None)


def _random(spec: "ExperimentSpec", options: dict[str, Any]) -> Any:
    import optuna

    return _optuna_search(spec, optuna.samplers.RandomSampler(seed=spec.search_seed))


def _tpe(spec: "ExperimentSpec", options: dict[str, Any]) -> Any:
    import optuna

    # constant_liar: trials running in parallel count as pessimistic results, so TPE
    # does not propose the same point to every free worker.
    sampler = optuna.samplers.TPESampler(seed=spec.search_seed, constant_liar=True,
                                         n_startup_trials=options.get("n_startup_trials", 10),
                                         multivariate=options.get("multivariate", True), group=True)
    return _optuna_search(spec, sampler)


def _gp(spec: "ExperimentSpec", options: dict[str, Any]) -> Any:
    import optuna

    sampler = optuna.samplers.GPSampler(seed=spec.search_seed, n_startup_trials=options.get("n_startup_trials", 10),
                                        warn_independent_sampling=False)
    return _optuna_search(spec, sampler)


def _cmaes(spec: "ExperimentSpec", options: dict[str, Any]) -> Any:
    import optuna

    sampler = optuna.samplers.CmaEsSampler(seed=spec.search_seed, n_startup_trials=options.get("n_startup_trials", 1),
                                           warn_independent_sampling=False)
    return _optuna_search(spec, sampler)


def _qmc(spec: "ExperimentSpec", options: dict[str, Any]) -> Any:
    import optuna

    sampler = optuna.samplers.QMCSampler(seed=spec.search_seed, qmc_type=options.get("qmc_type", "sobol"),
                                         scramble=True, warn_independent_sampling=False,
                                         warn_asynchronous_seeding=False)
    return _optuna_search(spec, sampler)


def _grid(spec: "ExperimentSpec", options: dict[str, Any]) -> Any:
    return _points_searcher_class()(spec.space.grid(), metric=spec.metric, mode=spec.mode)


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
CONTINUOUS_ONLY = ("cmaes", "qmc")


def _points_searcher_class() -> type:
    from ray.tune.search import Searcher

    class PointsSearcher(Searcher):
        """Hands out a precomputed list of flat configs, then reports FINISHED.

        Ray's own grid search cannot express conditional parameters; the space
        expands the conditional tree itself (see ``SearchSpace.grid``).
        """

        def __init__(self, points: list[dict[str, Any]], metric: str, mode: str) -> None:
            super().__init__(metric=metric, mode=mode)
            self.points = points
            self.next_index = 0

        def suggest(self, trial_id: str) -> dict[str, Any] | str:
            if self.next_index >= len(self.points):
                return Searcher.FINISHED
            self.next_index += 1
            return dict(self.points[self.next_index - 1])

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            pass

        def save(self, checkpoint_path: str) -> None:
            Path(checkpoint_path).write_text(json.dumps({"points": self.points, "next_index": self.next_index}))

        def restore(self, checkpoint_path: str) -> None:
            state = json.loads(Path(checkpoint_path).read_text())
            self.points, self.next_index = state["points"], state["next_index"]

    return PointsSearcher


# ------------------------------------------------------------- trial schedulers
def _fifo(spec: "ExperimentSpec", options: dict[str, Any]) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def _asha(spec: "ExperimentSpec", options: dict[str, Any]) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    # One epoch is one training_iteration. Reduction factor 4 is Ray's default; it beat 2 (our
    # old default) at every target of benchmarks/scheduler_replay.py: fewer rungs stop fewer
    # late bloomers, for less compute (benchmarks/README.md, section 3).
    return ASHAScheduler(time_attr="training_iteration", max_t=spec.train.epochs,
                         grace_period=options.get("grace_period", 1),
                         reduction_factor=options.get("reduction_factor", 4),
                         brackets=options.get("brackets", 1))


def _hyperband(spec: "ExperimentSpec", options: dict[str, Any]) -> Any:
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(time_attr="training_iteration", max_t=spec.train.epochs,
                              reduction_factor=options.get("reduction_factor", 3))


def _median(spec: "ExperimentSpec", options: dict[str, Any]) -> Any:
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(time_attr="training_iteration", grace_period=options.get("grace_period", 1),
                              min_samples_required=options.get("min_samples_required", 3))


def _pbt(spec: "ExperimentSpec", options: dict[str, Any]) -> Any:
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    mutations = {}
    for name, info in pbt_mutations(spec).items():
        low, high = info["low"], info["high"]
        if info["type"] == "int":
            mutations[name] = tune.lograndint(low, high + 1) if info["log"] else tune.randint(low, high + 1)
        else:
            mutations[name] = tune.loguniform(low, high) if info["log"] else tune.uniform(low, high)
    return PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=options.get("perturbation_interval", default_perturbation_interval(spec)),
        hyperparam_mutations={POINT_KEY: mutations},
        quantile_fraction=options.get("quantile_fraction", 0.25),
        resample_probability=options.get("resample_probability", 0.25),
    )


def default_perturbation_interval(spec: "ExperimentSpec") -> int:
    """Four exploit/explore rounds over the budget, at least one epoch apart."""
    return max(1, spec.train.epochs // 4)


def pbt_mutations(spec: "ExperimentSpec") -> dict[str, dict[str, Any]]:
    """The parameters PBT perturbs: continuous ones that every trial has (not inside an option)."""
    return {name: info for name, info in spec.space.describe().items()
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


# ------------------------------------------------------------------- progress
def _progress_callback_class() -> type:
    from ray.tune import Callback

    class Progress(Callback):
        """One line per finished trial (with the count so far), and a status line every ``every`` seconds."""

        def __init__(self, spec: "ExperimentSpec", echo: Callable[[str], None], every: float = 30.0) -> None:
            self.metric, self.mode, self.total = spec.metric, spec.mode, spec.trial_count()
            self.params, self.max_epochs, self.echo, self.every = spec.space.parameter_names, spec.train.epochs, echo, every
            self.best: tuple[float, str] | None = None
            self.ended: dict[str, str] = {}  # trial id -> how it ended (Ray updates statuses after callbacks)
            self.start = self.last_status = time.monotonic()

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            value = result.get(self.metric)
            if isinstance(value, (int, float)) and (self.best is None or _better(value, self.best[0], self.mode)):
                self.best = (value, trial.trial_id)

        def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
            if time.monotonic() - self.last_status >= self.every:
                self.echo(self.status(trials))

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            epochs = _epochs_trained(trial.last_result or {})
            self._line(trials, trial, "done" if epochs >= self.max_epochs else "stopped")

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._line(trials, trial, "ERROR")

        def status(self, trials: list) -> str:
            self.last_status = time.monotonic()
            counts: dict[str, int] = {}
            for t in trials:
                if t.trial_id not in self.ended:
                    counts[t.status] = counts.get(t.status, 0) + 1
            errored = sum(how == "ERROR" for how in self.ended.values())
            best = f"best {self.metric}={self.best[0]:.4f} (trial {self.best[1]})" if self.best else "no result yet"
            return (f"[{time.monotonic() - self.start:5.0f}s] {len(self.ended)}/{self.total} done, "
                    f"{counts.get('RUNNING', 0)} running, {counts.get('PENDING', 0) + counts.get('PAUSED', 0)} "
                    f"waiting, {errored} errored; {best}")

        def _line(self, trials: list, trial: Any, status: str) -> None:
            result = trial.last_result or {}
            if result.get("failure"):  # the trial ended itself: diverged or out of memory
                status = str(result["failure"]).split(":", 1)[0]
            self.ended[trial.trial_id] = status
            value = result.get(self.metric)
            shown = f"{self.metric}={value:.4f}" if isinstance(value, (int, float)) else f"{self.metric}=-"
            config = trial_params(trial.config)
            params = " ".join(f"{k}={_short(config[k])}" for k in self.params if k in config)
            # The count goes on the trial's own line: a status line here would count the trial Ray
            # is about to start in its place as waiting, and floods long sweeps (one per trial).
            self.echo(f"trial {trial.trial_id} {status:7s} {shown} after {_epochs_trained(result)} ep "
                      f"({len(self.ended)}/{self.total}) | {params}")

    return Progress


def _report_refresh_class() -> type:
    from ray.tune import Callback

    class ReportRefresh(Callback):
        """Rewrites results.csv, history.csv and report.md as trials end, so a crash loses none of them.

        At most once every ``every`` seconds: each rewrite reads every trial's results
        (O(trials)), and the driver shares the machine with the trials. A trial ending
        inside the interval is written by the next rewrite, at the latest ``every``
        seconds later; the final reports are written when the sweep ends anyway.
        """

        def __init__(self, spec: "ExperimentSpec", location: Location, every: float = 10.0) -> None:
            self.spec, self.location, self.every = spec, location, every
            self.last, self.pending = -float("inf"), False

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._due()

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._due()

        def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
            if self.pending:
                self._due()

        def _due(self) -> None:
            self.pending = True
            if time.monotonic() - self.last >= self.every:
                self._write()

        def _write(self) -> None:
            from .report import write_reports

            self.last, self.pending = time.monotonic(), False
            try:
                self.location.pull()
                _, paths = write_reports(self.location.local, best_config=self.spec.fixed_at, formats=("csv", "md"),
                                         final=False)
                self.location.push(paths.values())
            except Exception as exc:  # a report must never stop the sweep; the final one is written anyway
                logging.getLogger(__name__).warning("could not refresh the reports: %s", exc)

    return ReportRefresh


def _epochs_trained(result: dict[str, Any]) -> int:
    """The trial's epoch; Ray's training_iteration also counts results repeated after a restore."""
    return int(result.get("epoch", result.get("training_iteration", 0)) or 0)


def _better(value: float, than: float, mode: str) -> bool:
    return value > than if mode == "max" else value < than


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------- sweep
def _trainable(spec: "ExperimentSpec", data: Any, resources: dict[str, float]) -> Any:
    from ray import tune

    from .trainable import train_trial

    return tune.with_resources(
        tune.with_parameters(train_trial, make_config=spec.train_config, data=data,
                             num_threads=max(1, int(resources["cpu"])), checkpoint_every=spec.tune.checkpoint_every),
        resources,
    )


def _run_config(spec: "ExperimentSpec", location: Location, echo: Callable[[str], None], verbose: bool) -> Any:
    from ray import tune

    return tune.RunConfig(
        name=location.name,
        storage_path=location.storage,
        verbose=2 if verbose else 0,
        callbacks=[_progress_callback_class()(spec, echo), _report_refresh_class()(spec, location)],
        failure_config=tune.FailureConfig(max_failures=spec.tune.max_failures),
        # Under PBT a trial whose budget is spent ends here, before PBT sees the result: PBT
        # would pause it at a perturbation on its last epoch (while other trials wait for a
        # slot) and resume it from that checkpoint, which reports the last epoch again, and so
        # on for ever. Not for the others: HyperBand must see the last rung's results itself.
        stop={"epoch": spec.train.epochs} if spec.tune.scheduler == "pbt" else None,
        # PBT exploits other trials' recent checkpoints: keeping too few breaks its restores.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=max(spec.tune.keep_checkpoints, 4)
                                                if spec.tune.scheduler == "pbt" else spec.tune.keep_checkpoints),
    )


def run_sweep(
    spec: "ExperimentSpec",
    location: Location,
    *,
    data: Any,
    echo: Callable[[str], None] = print,
    verbose: bool = False,
) -> Any:
    """Run the experiment on Ray Tune into ``location``; returns Ray's ``ResultGrid``."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the old reporter honours verbose=0
    with ray_session(spec.tune.address, verbose=verbose, dashboard=spec.tune.dashboard, echo=echo):
        from ray import tune

        resources = trial_resources(spec)
        scheduler = TRIAL_SCHEDULERS[spec.tune.scheduler].factory(spec, spec.tune.scheduler_options)
        if spec.tune.scheduler == "pbt":
            # PBT mutates trial configs itself and refuses search algorithms: the population
            # is drawn here (given points first) and handed over as one grid of whole configs.
            points = spec.points_to_evaluate()
            points += spec.space.sample(spec.tune.num_samples - len(points), seed=spec.search_seed)
            param_space, search_alg, samples = {POINT_KEY: tune.grid_search(points)}, None, 1
        else:
            search_alg = SEARCH_ALGS[spec.tune.search_alg].factory(spec, spec.tune.search_alg_options)
            param_space, samples = {}, spec.trial_count()
        tune_config = tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=samples,
            max_concurrent_trials=spec.tune.max_concurrent,
            time_budget_s=spec.tune.time_budget_s,
            # A reused actor saves a worker start per trial (5x on short trials), but under PBT
            # (Ray 2.60, function trainables) exploited trials then lost reported epochs.
            reuse_actors=spec.tune.scheduler != "pbt",
        )
        tuner = tune.Tuner(_trainable(spec, data, resources), param_space=param_space, tune_config=tune_config,
                           run_config=_run_config(spec, location, echo, verbose))
        return tuner.fit()


def resume_sweep(
    spec: "ExperimentSpec",
    location: Location,
    *,
    data: Any,
    retry_errored: bool = False,
    verbose: bool = False,
) -> Any:
    """Finish an interrupted experiment: finished trials stay, running ones continue from checkpoints.

    With ``retry_errored``, errored trials continue from their last checkpoint too.
    """
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    with ray_session(spec.tune.address, verbose=verbose, dashboard=spec.tune.dashboard):
        from ray import tune

        resources = trial_resources(spec)
        tuner = tune.Tuner.restore(location.remote or str(location.local), trainable=_trainable(spec, data, resources),
                                   resume_unfinished=True, resume_errored=retry_errored)
        return tuner.fit()
