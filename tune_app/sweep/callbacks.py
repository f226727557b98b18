"""Ray Tune callbacks of a sweep: progress lines, reports refreshed as trials end, the checkpoint budget.

It imports Ray: the runner imports it when a sweep starts.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from ..experiment.checkpoints import TrialCheckpoints, settle
from ..experiment.location import Location
from ..trial_result import FAILURE, RAY_RESULT_KEYS, epochs_trained, failure_status, trial_params
from . import compat

if TYPE_CHECKING:
    from ..spec import ExperimentSpec


class Progress(Callback):
    """One line per finished trial (with the count so far), and a status line every ``every`` seconds."""

    def __init__(self, spec: ExperimentSpec, echo: Callable[[str], None], every: float = 30.0) -> None:
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
        epochs = epochs_trained(trial.last_result or {})
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
        if result.get(FAILURE):  # the trial ended itself: diverged or out of memory
            status = failure_status(result[FAILURE])
        self.ended[trial.trial_id] = status
        value = result.get(self.metric)
        shown = f"{self.metric}={value:.4f}" if isinstance(value, (int, float)) else f"{self.metric}=-"
        config = trial_params(trial.config)
        params = " ".join(f"{k}={_short(config[k])}" for k in self.params if k in config)
        # The count goes on the trial's own line: a status line here would count the trial Ray
        # is about to start in its place as waiting, and floods long sweeps (one per trial).
        self.echo(f"trial {trial.trial_id} {status:7s} {shown} after {epochs_trained(result)} ep "
                  f"({len(self.ended)}/{self.total}) | {params}")


class ReportRefresh(Callback):
    """Rewrites results.csv, history.csv and report.md as trials end, so a crash loses none of them.

    At most once every ``every`` seconds, and never more than 2% of the driver's time:
    each rewrite reads every trial's results (O(trials): 6 s at 10,000 trials), and the
    driver shares the machine with the trials, so the interval grows to 50 times the last
    rewrite's duration. A trial ending inside the interval is written by the next
    rewrite; the final reports are written when the sweep ends anyway.
    """

    SHARE = 0.02  # of the driver's wall time, at most

    def __init__(self, spec: ExperimentSpec, location: Location, every: float = 10.0) -> None:
        self.spec, self.location, self.every = spec, location, every
        self.interval = every
        self.last, self.pending = -float("inf"), False
        self.writes, self.seconds = 0, 0.0  # how many rewrites, and their time in total
        self.started = time.monotonic()  # Ray's setup() sets it again when the sweep starts

    def setup(self, **info: Any) -> None:
        self.started = time.monotonic()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._due()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._due()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self.pending:
            self._due()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        # what the refreshes cost, for benchmarks/many_trials.py (logging at INFO shows it)
        wall = time.monotonic() - self.started
        logging.getLogger(__name__).info(
            "report rewrites while the sweep ran: %d, %.2f s in all, %.2f%% of the driver's %.2f s",
            self.writes, self.seconds, 100 * self.seconds / max(wall, 1e-9), wall)

    def _due(self) -> None:
        self.pending = True
        if time.monotonic() - self.last >= self.interval:
            self._write()

    def _write(self) -> None:
        from ..report import write_reports

        self.last, self.pending = time.monotonic(), False
        try:
            self.location.pull()
            _, paths = write_reports(self.location.local, best_config=self.spec.fixed_at, formats=("csv", "md"),
                                     final=False)
            self.location.push([*paths.values(), *self.location.driver_files()])
        except Exception as exc:  # a report must never stop the sweep; the final one is written anyway
            logging.getLogger(__name__).warning("could not refresh the reports: %s", exc)
        took = time.monotonic() - self.last
        self.writes, self.seconds = self.writes + 1, self.seconds + took
        self.interval = max(self.every, took / self.SHARE)


_ENDED_STATUSES = {"TERMINATED": "finished", "ERROR": "errored"}


class CheckpointBudget(Callback):
    """The experiment-wide checkpoint budget: settles each trial's checkpoints as it ends.

    While a trial can continue, Ray's checkpoint manager keeps its best checkpoints and its
    latest. Once it cannot (it completed: budget spent, stopped by a trial scheduler,
    diverged, out of memory; or it errored for good), only the ``keep`` best ended trials
    by the objective keep anything, their best epoch's weights (see
    :func:`~tune_app.experiment.checkpoints.settle`); a trial that drops out of the best loses its too.
    Trials that failed never count among the best, as in the reports' leaderboard.

    Paused trials (HyperBand) are never touched. A checkpoint that a trial still alive
    would restore from (a PBT exploit of a trial that has since ended) waits until none
    does. Ray's own bookkeeping is left as it is: the checkpoint it would restore an ended
    trial from (its latest) stays, as a marker that re-reports the final result (see the
    trainable), so ``tune-app resume`` after a killed driver never trains an ended trial again.
    """

    def __init__(self, spec: ExperimentSpec) -> None:
        self.metric, self.mode, self.keep = spec.metric, spec.mode, spec.tune.keep_best_trials
        self.ended: dict[str, str] = {}  # trial id -> "finished" / "errored" (Ray sets statuses after callbacks)
        self.settled: dict[str, bool] = {}  # trial id -> whether it was settled as kept
        self.waiting = False  # an ended trial waits for a live one to restore from elsewhere

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.ended[trial.trial_id] = "finished"
        self._settle(trials)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.ended[trial.trial_id] = "errored"
        self._settle(trials)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        # Trials that ended without a callback: stopped by tune.time_budget_s, or ended before a
        # resume. (Not at the experiment's end: an interrupted sweep's trials read TERMINATED
        # there, but the saved experiment state has them running, and resume continues them.)
        newly = [t for t in trials if t.trial_id not in self.ended and t.status in _ENDED_STATUSES]
        for trial in newly:
            self.ended[trial.trial_id] = _ENDED_STATUSES[trial.status]
        if newly or self.waiting:
            self._settle(trials)

    def kept_trials(self, trials: list) -> list[str]:
        """Ids of the ended trials that keep their best weights, best first (ties: the earlier trial)."""
        scored = [(score, i, t.trial_id) for i, t in enumerate(trials)
                  if self._how(t) and (score := self._score(t)) is not None]
        return [trial_id for _, _, trial_id in sorted(scored, key=lambda item: (-item[0], item[1]))[:self.keep]]

    def _settle(self, trials: list) -> None:
        kept = set(self.kept_trials(trials))
        # What live trials would restore from: never removed under them.
        needed = {os.path.normpath(t.checkpoint.path) for t in trials
                  if not self._how(t) and t.checkpoint is not None}
        self.waiting = False
        for trial in trials:
            how = self._how(trial)
            keep = trial.trial_id in kept
            if how is None or self.settled.get(trial.trial_id) == keep:
                continue
            filesystem = compat.trial_filesystem(trial)
            if filesystem is None:  # never started: nothing saved
                self.settled[trial.trial_id] = keep
                continue
            try:
                store = TrialCheckpoints(trial.path, filesystem)
                if any(os.path.normpath(c.path) in needed for c in store.list()):
                    self.waiting = True
                    continue
                result = {k: v for k, v in (trial.last_result or {}).items() if k not in RAY_RESULT_KEYS}
                settle(store, keep=keep, ended=how, result=result, metric=self.metric, mode=self.mode)
            except Exception as exc:  # the budget must never stop the sweep; the next ending retries
                logging.getLogger(__name__).warning("could not settle the checkpoints of trial %s: %s",
                                                    trial.trial_id, exc)
                continue
            self.settled[trial.trial_id] = keep

    def _how(self, trial: Any) -> str | None:
        """How a trial ended ("finished" / "errored"), or None while it can continue."""
        return self.ended.get(trial.trial_id)

    def _score(self, trial: Any) -> float | None:
        """The trial's best objective as a number to maximize; None for a failed trial or none reported."""
        if self._how(trial) == "errored" or (trial.last_result or {}).get(FAILURE):
            return None
        best = trial.metric_analysis.get(self.metric, {}).get(self.mode)
        if not isinstance(best, (int, float)) or not math.isfinite(best):
            return None
        return best if self.mode == "max" else -best


def _better(value: float, than: float, mode: str) -> bool:
    return value > than if mode == "max" else value < than


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
