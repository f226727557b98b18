"""Reports of an experiment directory: CSV tables and Markdown, without Ray."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import yaml

from .markdown import render_report
from .results import TrialRecord, history_frame, load_history, load_results, read_spec, read_trials, results_frame
from .tables import best_trial_id, leaderboard

__all__ = [
    "TrialRecord",
    "best_trial_id",
    "history_frame",
    "leaderboard",
    "load_history",
    "load_results",
    "read_spec",
    "read_trials",
    "results_frame",
    "write_reports",
]


def write_reports(
    experiment_dir: str | Path,
    best_config: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """(Re)write results.csv, history.csv, report.md, and best_config.yaml.

    Returns the results table and the path of each file written.

    ``best_config`` turns the best trial's flat config into the runnable spec
    written to ``best_config.yaml`` (the spec layer knows how; this layer does not).

    Each file is written to a temporary name and renamed, so a reader never sees
    half a file and a crash mid-write leaves the previous version.
    """
    experiment_dir = Path(experiment_dir)
    spec = read_spec(experiment_dir)
    metric = spec.get("train", {}).get("metric", "val_acc")
    mode = spec.get("train", {}).get("mode", "max")
    trials = read_trials(experiment_dir)
    results = results_frame(trials, metric, mode)
    paths = {
        "results": _write(experiment_dir / "results.csv", results.to_csv(index=False)),
        "history": _write(experiment_dir / "history.csv", history_frame(trials).to_csv(index=False)),
        "report": _write(experiment_dir / "report.md", render_report(results, spec, metric, mode)),
    }
    best_id = best_trial_id(results, metric, mode)
    if best_config is not None and best_id is not None:
        best = next(t for t in trials if t.trial_id == best_id)
        text = f"# Trial {best_id}, the best by {metric}; rerun it with: tune-app train best_config.yaml\n"
        text += yaml.safe_dump(best_config(best.config), sort_keys=False)
        paths["best_config"] = _write(experiment_dir / "best_config.yaml", text)
    return results, paths


def _write(path: Path, text: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; reports are as readable as any new file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
