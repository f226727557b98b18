"""Write an experiment's reports: the CSV tables, report.md, report.html and best_config.yaml."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .analysis import analyze
from .blocks import Block
from .confirmation import CONFIRM_CSV, CONFIRM_MD, Confirmation, confirmation_blocks, confirmation_tables
from .files import write_atomic as _write
from .markdown import render_blocks, render_report
from .results import read_trials

FORMATS = ("csv", "md", "html")


def write_reports(
    experiment_dir: str | Path,
    best_config: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    by: Sequence[str] = (),
    formats: Sequence[str] = FORMATS,
    final: bool = True,
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """(Re)write the reports of an experiment; Ray's own files are only read.

    Writes, as asked by ``formats``: ``csv`` -> ``results.csv`` and ``history.csv``;
    ``md`` -> ``report.md``; ``html`` -> ``report.html``. With ``best_config``, also
    ``best_config.yaml``: ``best_config`` turns the best trial's flat config into the
    runnable spec (the spec layer knows how; this layer does not).

    Args:
        experiment_dir: ``<storage>/<name>``.
        best_config: flat config -> runnable spec, or None to skip ``best_config.yaml``.
        by: parameters to cross in two-way tables (``("loss", "scheduler")``); ``by[0]``
            also colours the plots.
        formats: any of ``"csv"``, ``"md"``, ``"html"``.
        final: False for a report written while the sweep runs (e.g. after each trial):
            skips the costly parts, parameter importance and ``report.html`` (about 2 s
            at 100 trials), so that a call stays near 0.2 s at 100 trials.

    Returns:
        The results table and the path of each file written, under the keys
        ``results``, ``history``, ``report`` (Markdown), ``html``, ``best_config``.

    Raises:
        ValueError: an unknown format, or a ``by`` name that is not a categorical parameter.

    Each file is written to a temporary name and renamed, so a reader never sees half a
    file and a crash mid-write leaves the previous version.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report format {unknown[0]!r}; known: {', '.join(FORMATS)}")
    experiment_dir = Path(experiment_dir)
    trials = read_trials(experiment_dir)
    analysis = analyze(experiment_dir, by=by, importance=final, trials=trials)  # raises on a bad `by` first
    results, metric = analysis.results, analysis.metric
    paths: dict[str, Path] = {}
    if "csv" in formats:
        paths["results"] = _write(experiment_dir / "results.csv", results.to_csv(index=False))
        paths["history"] = _write(experiment_dir / "history.csv", analysis.history.to_csv(index=False))
    if "md" in formats:
        paths["report"] = _write(experiment_dir / "report.md", render_report(analysis))
    if "html" in formats and final:
        from .html import render_html

        paths["html"] = _write(experiment_dir / "report.html", render_html(analysis))
    best_id = analysis.chosen_trial
    if best_config is not None and best_id is not None:
        best = next(t for t in trials if t.trial_id == best_id)
        c = analysis.confirmation
        why = (f"the best mean {metric} over seeds {', '.join(map(str, c.seeds))} (tune-app confirm)"
               if c is not None and c.winner == best_id else f"the best by {metric}")
        text = f"# Trial {best_id}, {why}; rerun it with: tune-app train best_config.yaml\n"
        text += yaml.safe_dump(best_config(best.config), sort_keys=False)
        paths["best_config"] = _write(experiment_dir / "best_config.yaml", text)
    return results, paths


def write_confirmation(confirm_dir: str | Path) -> tuple[Confirmation, dict[str, Path]]:
    """Write ``confirm.csv`` and ``confirm.md`` into the confirmation directory."""
    confirm_dir = Path(confirm_dir)
    c = confirmation_tables(confirm_dir)
    blocks = [Block("h1", "Confirmation over seeds"), *confirmation_blocks(c)[1:]]
    return c, {
        "confirm_csv": _write(confirm_dir / CONFIRM_CSV, c.table.reset_index().to_csv(index=False)),
        "confirm_md": _write(confirm_dir / CONFIRM_MD, render_blocks(blocks)),
    }


def preload() -> None:
    """Import what writing the HTML report needs (matplotlib, Optuna's fANOVA: about 2 s) ahead of time.

    A sweep does it while its Ray instance starts, so that its final reports come sooner.
    """
    import optuna.importance  # noqa: F401

    from . import plots  # noqa: F401
