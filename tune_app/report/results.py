"""Experiment directory -> trial records -> pandas DataFrames, without Ray.

Reads only files: Ray Tune's experiment state (``experiment_state-*.json``, plain
JSON) for each trial's status, and each trial directory's ``params.json``,
``result.json`` (one JSON line per reported epoch) and ``error.txt``. Works on a
finished, stopped or crashed experiment, and never modifies what it reads.

Example:
    >>> results = load_results("tune_results/quickstart")   # doctest: +SKIP
    >>> results.sort_values("val_acc", ascending=False).head()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..trial_result import FAILURE, RAY_RESULT_KEYS, epoch_of, failure_status, trial_params


@dataclass
class TrialRecord:
    """One trial as read from disk."""

    trial_id: str
    status: str
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    directory: Path | None = None
    restarts: int = 0  # Ray restarted it after its worker or node failed (``tune.max_failures``)

    def best(self, metric: str, mode: str) -> float | None:
        values = [r[metric] for r in self.history if _is_number(r.get(metric))]
        if not values:
            return None
        return max(values) if mode == "max" else min(values)


def read_spec(experiment_dir: str | Path) -> dict[str, Any]:
    """The resolved spec tune-app wrote into the experiment directory (empty if none)."""
    path = Path(experiment_dir) / "spec.yaml"
    # Our own file, read on every report refresh: libyaml's safe loader is ~10x faster when present.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(path.read_text(), Loader=loader) if path.is_file() else None
    return data if isinstance(data, dict) else {}


def read_data_info(experiment_dir: str | Path) -> dict[str, Any]:
    """How the sweep read its data (``data.json``: notes, skipped images); empty if not written."""
    path = Path(experiment_dir) / "data.json"
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


ORIGIN_FILE = "origin.json"  # what the experiment grew from: --warm-start sources, tune-app extend runs


def read_origin(experiment_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """``origin.json``: ``{"warm_start": [...], "extended": [...]}`` as far as recorded; empty if none."""
    path = Path(experiment_dir) / ORIGIN_FILE
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def read_trials(experiment_dir: str | Path) -> list[TrialRecord]:
    """Every trial of the experiment, in the order Ray created them."""
    experiment_dir = Path(experiment_dir)
    if not experiment_dir.is_dir():
        raise FileNotFoundError(f"no experiment directory at {experiment_dir}")
    states = _trial_states(experiment_dir)
    trials = []
    seen_dirs = set()
    budget = read_spec(experiment_dir).get("train", {}).get("epochs")
    for state in states:
        directory = experiment_dir / state["relative_logdir"] if state.get("relative_logdir") else None
        trial = _read_trial(state["trial_id"], state.get("status", "UNKNOWN"), state.get("config", {}), directory,
                            budget)
        trial.restarts = state[RESTARTS]
        if trial.status == "PAUSED" and _finished(trial.history, budget):
            trial.status = "TERMINATED"  # HyperBand can leave a trial paused at its final rung: it is done
        trials.append(trial)
        seen_dirs.add(directory)
    # Trial directories the state file does not know yet (the driver died before saving it).
    unknown = [_read_trial(None, None, None, p.parent, budget) for p in experiment_dir.glob("*/params.json")
               if p.parent not in seen_dirs]
    return trials + sorted(unknown, key=_directory_number)


RESTARTS = "restarts"  # results.csv's column: Ray's num_failures, from a trial's runtime metadata


def _trial_states(experiment_dir: Path) -> list[dict[str, Any]]:
    """Each trial's newest saved state: a resumed run saves a new file; ``tune-app extend`` runs
    another Tuner in the same directory, whose file holds only its own trials.

    Ray saves a trial as [its state, its runtime metadata]; the metadata's ``num_failures``
    (its restarts after a failure) goes into the state as ``restarts``.
    """
    runs: list[list[dict[str, Any]]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for path in sorted(experiment_dir.glob("experiment_state-*.json")):  # named by start time: oldest first
        data = json.loads(path.read_text())
        states = []
        for entry in data.get("trial_data", []):
            state = json.loads(entry[0]) if isinstance(entry, list) else entry
            state = state if isinstance(state, dict) else json.loads(state)
            metadata = entry[1] if isinstance(entry, list) and len(entry) > 1 else None
            states.append({**state, RESTARTS: _failures(metadata)})
        runs.append([s for s in states if s.get("trial_id") not in by_id])
        by_id.update((s.get("trial_id"), s) for s in states)
    # Trials in the order of the run that first saved them, within it in creation order.
    return [by_id[s.get("trial_id")] for run in runs for s in sorted(run, key=_trial_number)]


# Ray writes the metadata with indent=2, num_failures among its first top-level keys: finding it
# reads a few bytes, where parsing all ~20 KB took 65 us per trial on every report refresh.
_NUM_FAILURES = re.compile(r'^  "num_failures": (\d+)', re.MULTILINE)


def _failures(metadata: Any) -> int:
    """``num_failures`` of a trial's runtime metadata (a JSON string), 0 when there is none."""
    if isinstance(metadata, str) and (found := _NUM_FAILURES.search(metadata)):
        return int(found.group(1))
    try:  # another layout: parse it all
        data = json.loads(metadata) if isinstance(metadata, str) else metadata
        return int(data.get("num_failures") or 0) if isinstance(data, dict) else 0
    except (ValueError, TypeError):
        return 0


def _directory_number(trial: TrialRecord) -> tuple[int, str]:
    """Ray names a trial directory ``<trainable>_<trial_id>_<creation number>_<tag>_<date>``."""
    name = trial.directory.name if trial.directory else ""
    match = re.search(rf"_{re.escape(trial.trial_id)}_(\d+)_", name)
    return (int(match.group(1)) if match else 1 << 62, name)


def _trial_number(state: dict[str, Any]) -> int:
    """Ray's experiment tag starts with the trial's creation number: ``"3_lr=0.01,..."``."""
    head = str(state.get("experiment_tag", "")).split("_", 1)[0]
    return int(head) if head.isdigit() else 0


def _finished(history: list[dict[str, Any]], budget: int | None) -> bool:
    """Whether the last result ends the trial: Ray's done flag, or the epoch budget reached."""
    if not history:
        return False
    last = history[-1]
    return bool(last.get("done")) or bool(budget and (epoch_of(last) or 0) >= budget)


def _read_trial(trial_id: str | None, status: str | None, config: dict | None, directory: Path | None,
                budget: int | None = None) -> TrialRecord:
    history: list[dict[str, Any]] = []
    error = None
    if directory is not None and directory.is_dir():
        results = directory / "result.json"
        if results.is_file():
            for line in results.read_text().splitlines():
                line = line.strip()
                if line:
                    try:
                        history.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue  # a line cut short by a crash; Ray appends after it on resume
        if config is None and (directory / "params.json").is_file():
            config = json.loads((directory / "params.json").read_text())
        if (directory / "error.txt").is_file():
            error = _error_summary((directory / "error.txt").read_text())
    if trial_id is None:
        trial_id = history[-1]["trial_id"] if history else (directory.name if directory else "?")
    if status is None:
        status = "ERROR" if error else ("TERMINATED" if _finished(history, budget) else "UNKNOWN")
    failure = history[-1].get(FAILURE) if history else None
    if failure and status != "ERROR":  # the trainable ended the trial itself: "diverged: ..." / "oom: ..."
        status, error = failure_status(failure), failure
    return TrialRecord(trial_id, status, trial_params(config or {}), _latest_per_epoch(history), error, directory)


def _latest_per_epoch(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One result per epoch, the last reported: a trial restarted from a checkpoint repeats epochs."""
    by_epoch: dict[Any, dict[str, Any]] = {}
    for result in history:
        by_epoch.pop(epoch_of(result), None)  # re-insert: the newest report decides the order too
        by_epoch[epoch_of(result)] = result
    return list(by_epoch.values())


def _error_summary(text: str) -> str:
    """The exception line of a traceback Ray wrote, e.g. ``ValueError: boom``."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------- DataFrames
def parameter_columns(trials: list[TrialRecord]) -> list[str]:
    """Searched parameter names in the order trials first used them, each family's parameters after it."""
    names: dict[str, None] = {}
    for trial in trials:
        names.update(dict.fromkeys(trial.config))
    roots = list(dict.fromkeys(name.split(".", 1)[0] for name in names))
    order = list(names)
    return sorted(order, key=lambda name: (roots.index(name.split(".", 1)[0]), order.index(name)))


def results_frame(trials: list[TrialRecord], metric: str, mode: str) -> pd.DataFrame:
    """One row per trial: id, status, epochs, best metric, parameters, time, restarts, error."""
    params = parameter_columns(trials)
    rows = []
    for trial in trials:
        last = trial.history[-1] if trial.history else {}
        row = {
            "trial_id": trial.trial_id,
            "status": trial.status,
            "epochs": max((epoch_of(r) or 0 for r in trial.history), default=0),
            metric: trial.best(metric, mode),
            **{name: trial.config.get(name) for name in params},
            "time_total_s": last.get("time_total_s"),
            RESTARTS: trial.restarts,
            "error": trial.error,
        }
        rows.append(row)
    columns = ["trial_id", "status", "epochs", metric, *params, "time_total_s", RESTARTS, "error"]
    return pd.DataFrame(rows, columns=columns)


def history_frame(trials: list[TrialRecord]) -> pd.DataFrame:
    """One row per trial and epoch: every metric the trial reported, and elapsed time."""
    rows = []
    for trial in trials:
        for result in trial.history:
            metrics = {k: v for k, v in result.items() if k not in RAY_RESULT_KEYS}
            metrics["epoch"] = epoch_of(result)
            rows.append({"trial_id": trial.trial_id, **metrics, "time_total_s": result.get("time_total_s")})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["trial_id", "epoch", "time_total_s"])
    first = ["trial_id", "epoch"]
    return frame[first + [c for c in frame.columns if c not in first]]


def _objective(experiment_dir: Path, metric: str | None, mode: str | None) -> tuple[str, str]:
    train = read_spec(experiment_dir).get("train", {})
    return metric or train.get("metric", "val_acc"), mode or train.get("mode", "max")


def load_results(experiment_dir: str | Path, metric: str | None = None, mode: str | None = None) -> pd.DataFrame:
    """``results.csv`` as a DataFrame, computed from the experiment directory."""
    metric, mode = _objective(Path(experiment_dir), metric, mode)
    return results_frame(read_trials(experiment_dir), metric, mode)


def load_history(experiment_dir: str | Path) -> pd.DataFrame:
    """``history.csv`` as a DataFrame, computed from the experiment directory."""
    return history_frame(read_trials(experiment_dir))
