"""Ray Tune callbacks of a sweep: progress lines for the terminal, reports refreshed as trials end.

Part of the runner layer (it imports Ray); the runner imports it when a sweep starts.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from ray.tune import Callback

from .location import Location
from .trial_result import FAILURE, epochs_trained, failure_status, trial_params

if TYPE_CHECKING:
    from .spec import ExperimentSpec


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


def _better(value: float, than: float, mode: str) -> bool:
    return value > than if mode == "max" else value < than


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
