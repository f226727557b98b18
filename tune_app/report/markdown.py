"""``report.md``: the experiment header, the leaderboard and the failed trials."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .tables import leaderboard, status_counts


def markdown_table(frame: pd.DataFrame, index: bool = False) -> str:
    """A GitHub-flavoured Markdown table; floats with 4 significant digits, blanks for missing."""
    if index:
        frame = frame.reset_index()
    header = "| " + " | ".join(_cell(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_report(results: pd.DataFrame, spec: dict[str, Any], metric: str, mode: str) -> str:
    """The whole ``report.md`` text."""
    tune = spec.get("tune", {})
    counts = status_counts(results)
    board = leaderboard(results, metric, mode)
    lines = [
        f"# Experiment `{spec.get('name', '?')}`",
        "",
        f"- task: {spec.get('task', '?')}, model: `{spec.get('model', {}).get('name', '?')}`, "
        f"dataset: {spec.get('data', {}).get('dataset', '?')}",
        f"- search: {tune.get('search_alg', '?')}, trial scheduler: {tune.get('scheduler', '?')}, "
        f"objective: {mode} `{metric}`",
        f"- trials: {len(results)} (" + ", ".join(f"{n} {s}" for s, n in counts.items()) + ")",
    ]
    if not board.empty:
        best = board.iloc[0]
        lines.append(f"- best `{metric}`: **{best[metric]:.4f}** (trial `{best['trial_id']}`)")
    lines += ["", "## Leaderboard", ""]
    lines.append(markdown_table(board, index=True) if not board.empty else "No trial reported the metric.")
    failed = results[results["status"] == "ERROR"]
    if not failed.empty:
        lines += ["", "## Failed trials", "", markdown_table(failed[["trial_id", "epochs", "error"]])]
    return "\n".join(lines) + "\n"
