"""The plain-text summary printed at the end of ``tune-app search`` (and by ``tune-app report``).

Example:
    >>> print(summary_text("tune_results/quickstart", {"report": Path("report.md")}))  # doctest: +SKIP
    Leaderboard: best 5 of 8 trials by val_acc (max)
    rank  trial_id  status      epochs  val_acc      lr  loss
       1  3f2a0001  TERMINATED       8   0.9361  0.0031  focal
    ...
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from .analysis import Analysis, analyze, is_missing
from .document import comparison_display
from .formatting import fmt, looks_numeric


def summary_text(experiment_dir: str | Path, paths: Mapping[str, Path] | None = None, top: int = 5,
                 by: tuple[str, ...] = (), analysis: Analysis | None = None) -> str:
    """Leaderboard head, the table of the first searched categorical parameter (or ``by[0]``), report paths.

    Args:
        experiment_dir: the experiment directory.
        paths: files to list at the end, e.g. what :func:`~tune_app.report.write_reports` returned.
        top: leaderboard rows.
        by: as for ``write_reports``; ``by[0]`` picks the comparison table shown.
        analysis: an :class:`Analysis` already computed (skips reading the directory).
    """
    a = analysis or analyze(experiment_dir, by=by, importance=False)
    board = a.leaderboard(top=top)
    lines = []
    if board.empty:
        lines.append(f"No trial reported {a.metric}.")
    else:
        scored = len(a.leaderboard(top=None))
        lines.append(f"Leaderboard: best {len(board)} of {scored} trials by {a.metric} ({a.mode})")
        lines.append(text_table(board.drop(columns=["time_total_s"]), index=True))
        best = board.iloc[0]
        params = ", ".join(f"{p.name}={fmt(best[p.name])}" for p in a.parameters if not is_missing(best[p.name]))
        lines.append(f"best {a.metric}: {best[a.metric]:.4f} (trial {best['trial_id']})"
                     + (f" with {params}" if params else ""))
    name = a.colour_by
    if name is not None and name in a.comparisons and not board.empty:
        lines += ["", f"{name}, best value first ({a.metric} over the trials that did not fail):",
                  text_table(comparison_display(a.comparisons[name]))]
        if name in a.separations:
            lines.append(a.separations[name].sentence())
    if paths:
        width = max(len(k) for k in paths) + 2
        lines += ["", "reports:"] + [f"  {k + ':':{width}s}{v}" for k, v in paths.items()]
    return "\n".join(lines)


def text_table(frame: pd.DataFrame, index: bool = False) -> str:
    """Columns aligned with spaces: numbers to the right, text to the left; 4 significant digits."""
    if index:
        frame = frame.reset_index()
    header = [fmt(c) for c in frame.columns]
    body = [[fmt(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max([len(h), *(len(r[j]) for r in body)]) for j, h in enumerate(header)]
    right = [bool(body) and all(looks_numeric(r[j]) or r[j] == "" for r in body) for j in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

    return "\n".join([line(header), *(line(r) for r in body)])
