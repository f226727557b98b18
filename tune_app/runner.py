"""Ray Tune assembly: search algorithm, trial scheduler, resources, storage.

With ``trainable.py`` the only code that imports Ray, and it does so lazily, so
validating a spec does not pay for importing Ray. The registries below are plain
dicts from the YAML name to a small factory taking the experiment spec.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:  # the spec layer imports this module, not the other way round
    from .spec import ExperimentSpec


# ------------------------------------------------------------ search algorithms
def _optuna_search(spec: "ExperimentSpec", sampler: Any) -> Any:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return OptunaSearch(space=spec.space.define_by_run, metric=spec.metric, mode=spec.mode, sampler=sampler)


def _random(spec: "ExperimentSpec") -> Any:
    import optuna

    return _optuna_search(spec, optuna.samplers.RandomSampler(seed=spec.search_seed))


def _tpe(spec: "ExperimentSpec") -> Any:
    import optuna

    return _optuna_search(spec, optuna.samplers.TPESampler(seed=spec.search_seed))


def _grid(spec: "ExperimentSpec") -> Any:
    return _grid_searcher_class()(spec.space.grid(), metric=spec.metric, mode=spec.mode)


SEARCH_ALGS: dict[str, Callable[["ExperimentSpec"], Any]] = {
    "random": _random,
    "optuna": _tpe,
    "tpe": _tpe,
    "grid": _grid,
}


def _grid_searcher_class() -> type:
    from ray.tune.search import Searcher

    class GridSearcher(Searcher):
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

    return GridSearcher


# ------------------------------------------------------------- trial schedulers
def _fifo(spec: "ExperimentSpec") -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def _asha(spec: "ExperimentSpec") -> Any:
    from ray.tune.schedulers import ASHAScheduler

    # One epoch is one training_iteration; weak trials can stop after the first.
    return ASHAScheduler(time_attr="training_iteration", max_t=spec.train.epochs, grace_period=1, reduction_factor=2)


TRIAL_SCHEDULERS: dict[str, Callable[["ExperimentSpec"], Any]] = {
    "fifo": _fifo,
    "asha": _asha,
}


# ------------------------------------------------------------------ Ray itself
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _loopback_only() -> None:
    """Make a local Ray instance listen on 127.0.0.1 only, unless the user set LOOPBACK_ENV=1.

    On Linux Ray binds to the machine's address by default, which would open the
    instance to the network; with this variable at 0 it uses loopback. Ray reads it
    once, when first imported, so if Ray was imported before (a notebook, a test),
    the constant it read is updated too.
    """
    os.environ.setdefault(LOOPBACK_ENV, "0")
    if os.environ[LOOPBACK_ENV] == "0" and "ray" in sys.modules:
        import ray._private.ray_constants as ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False


@contextmanager
def ray_session(address: str | None, verbose: bool = False) -> Iterator[None]:
    """Connect to ``address``, or start a private local Ray instance; shut down what we started."""
    import ray

    if ray.is_initialized():  # the caller manages Ray (e.g. a test or a notebook)
        yield
        return
    quiet = logging.INFO if verbose else logging.ERROR
    if address:
        ray.init(address=address, logging_level=quiet, log_to_driver=verbose)
    else:
        _loopback_only()  # a sweep on a laptop must not open a cluster to the network
        ray.init(address="local", include_dashboard=False, logging_level=quiet, log_to_driver=verbose)
    try:
        yield
    finally:
        ray.shutdown()


# ------------------------------------------------------------------- progress
def _progress_callback_class() -> type:
    from ray.tune import Callback

    class TrialLines(Callback):
        """Prints one line per finished trial: status, metric, best so far, parameters."""

        def __init__(self, spec: "ExperimentSpec", echo: Callable[[str], None]) -> None:
            self.metric, self.mode, self.total = spec.metric, spec.mode, spec.trial_count()
            self.params, self.max_epochs, self.echo = spec.space.parameter_names, spec.train.epochs, echo
            self.finished = 0
            self.best: float | None = None
            self.start = time.monotonic()

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            epochs = (trial.last_result or {}).get("training_iteration", 0)
            self._line(trial, "done" if epochs >= self.max_epochs else "stopped")

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._line(trial, "ERROR")

        def _line(self, trial: Any, status: str) -> None:
            self.finished += 1
            value = (trial.last_result or {}).get(self.metric)
            if value is not None and (self.best is None or (value > self.best if self.mode == "max" else value < self.best)):
                self.best = value
            epochs = (trial.last_result or {}).get("training_iteration", 0)
            shown = f"{self.metric}={value:.4f}" if value is not None else f"{self.metric}=-"
            best = f"best={self.best:.4f}" if self.best is not None else "best=-"
            params = " ".join(f"{k}={_short(trial.config[k])}" for k in self.params if k in trial.config)
            elapsed = time.monotonic() - self.start
            self.echo(f"[{self.finished}/{self.total} {elapsed:5.0f}s] trial {trial.trial_id} {status:7s} "
                      f"{shown} ({epochs} ep) {best} | {params}")

    return TrialLines


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------- sweep
def run_sweep(
    spec: "ExperimentSpec",
    experiment_dir: Path,
    *,
    data: Any,
    echo: Callable[[str], None] = print,
    verbose: bool = False,
) -> Any:
    """Run the experiment on Ray Tune into ``experiment_dir``; returns Ray's ``ResultGrid``."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the old reporter honours verbose=0
    if not spec.tune.address:
        _loopback_only()  # before Ray's first import, so the supported path needs no patch
    from ray import tune

    from .trainable import train_trial

    resources = spec.tune.resources
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, make_config=spec.train_config, data=data, num_threads=max(1, int(resources.cpu))),
        {"cpu": resources.cpu, "gpu": resources.gpu},
    )
    total = spec.trial_count()
    tune_config = tune.TuneConfig(
        metric=spec.metric,
        mode=spec.mode,
        search_alg=SEARCH_ALGS[spec.tune.search_alg](spec),
        scheduler=TRIAL_SCHEDULERS[spec.tune.scheduler](spec),
        num_samples=total,
        max_concurrent_trials=spec.tune.max_concurrent,
        reuse_actors=True,
    )
    progress = _progress_callback_class()(spec, echo)
    run_config = tune.RunConfig(
        name=experiment_dir.name,
        storage_path=str(experiment_dir.parent),
        verbose=2 if verbose else 0,
        callbacks=[progress],
        failure_config=tune.FailureConfig(max_failures=0),
    )
    with ray_session(spec.tune.address, verbose=verbose):
        tuner = tune.Tuner(trainable, param_space={}, tune_config=tune_config, run_config=run_config)
        return tuner.fit()
