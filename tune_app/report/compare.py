"""``compare.md`` / ``compare.html``: search strategies run on the same space and budget, side by side.

``tune-app compare FILE --schedulers fifo,asha,pbt --seeds 3`` runs one experiment per
strategy and seed; this module reads their directories and answers: which strategy
reaches the best metric, with how much compute, and how soon it gets near the best.

Definitions (per experiment, i.e. per strategy and seed):

- best: the best metric of its trials that did not fail (as on its leaderboard);
- trial-epochs: epochs run, summed over its trials (failed ones included: they cost);
  trial-seconds: their ``time_total_s``, summed;
- to reach the target: its epoch results in order of arrival (see
  :mod:`~tune_app.report.timeline`); the trial-epochs, trial-seconds and wall time of
  every result up to the first one that brings the best so far to the target.

The default target is 98% of the best value any strategy reached (for a metric to
minimize: 2% above it).

Example:
    >>> runs = {"asha": ["tune_results/c-asha-s0", "tune_results/c-asha-s1"],
    ...         "fifo": ["tune_results/c-fifo-s0", "tune_results/c-fifo-s1"]}
    >>> comparison, paths = write_comparison("tune_results/compare", runs)  # doctest: +SKIP
    >>> comparison.strategies[["best_mean", "trial_epochs", "epochs_to_target"]]  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .blocks import Block
from .files import write_atomic
from .formatting import duration, fmt, mean_std
from .intervals import LEVEL, mean_interval
from .results import read_spec, read_trials, results_frame
from .tables import leaderboard
from .timeline import best_so_far, timeline, wall_seconds

TARGET_SHARE = 0.98
SEED_COLUMNS = ["strategy", "seed", "experiment", "trials", "best", "trial_epochs", "trial_seconds", "wall_seconds",
                "reached", "epochs_to_target", "seconds_to_target", "wall_to_target"]
STRATEGY_COLUMNS = ["seeds", "best_mean", "best_std", "best_low", "best_high", "trial_epochs", "trial_seconds",
                    "reached", "epochs_to_target", "seconds_to_target", "wall_to_target", "epochs_vs_fifo",
                    "seconds_vs_fifo"]
BASELINE = "fifo"  # every trial runs its whole budget: what early stopping saves is measured against it


@dataclass
class Comparison:
    """Strategies compared (see :func:`comparison_tables`).

    Attributes:
        metric, mode: the objective all experiments share.
        target: the metric value "reaching" means; ``target_rule`` says where it came from.
        seeds: one row per experiment (``SEED_COLUMNS``).
        strategies: one row per strategy, indexed by name (``STRATEGY_COLUMNS``): means over
            seeds, ``best_std`` their sample std, ``best_low`` .. ``best_high`` the 90% t interval
            of the mean best over seeds, the ``*_to_target`` means over the seeds that reached
            the target (``reached`` of them), ``*_vs_fifo`` those as a multiple of FIFO's
            (NaN without a FIFO run that reached it).
        curves: strategy -> one best-so-far frame per seed (``trial_epochs``,
            ``trial_seconds``, ``time``, ``best``).
    """

    metric: str
    mode: str
    target: float | None
    target_rule: str
    seeds: pd.DataFrame
    strategies: pd.DataFrame
    curves: dict[str, list[pd.DataFrame]] = field(default_factory=dict)


def comparison_tables(runs: Mapping[str, Sequence[str | Path]], target: float | None = None) -> Comparison:
    """Compare strategies: ``runs`` maps a strategy name to its experiment directories (one per seed).

    Raises:
        ValueError: no runs, or experiments that do not share one objective.
    """
    if not runs or not any(runs.values()):
        raise ValueError("nothing to compare: no experiment directories given")
    metric, mode = _objective(runs)
    rows, curves = [], {}
    for strategy, directories in runs.items():
        curves[strategy] = []
        for seed, directory in enumerate(directories, start=1):
            trials = read_trials(directory)
            results = results_frame(trials, metric, mode)
            events = timeline(trials, metric)
            curve = best_so_far(events, metric, mode)
            board = leaderboard(results, metric, mode, top=1)
            curves[strategy].append(curve)
            rows.append({"strategy": strategy, "seed": seed, "experiment": Path(directory).name,
                         "trials": len(results), "best": float(board[metric].iloc[0]) if len(board) else math.nan,
                         "trial_epochs": int(results["epochs"].sum()),
                         "trial_seconds": float(results["time_total_s"].dropna().sum()),
                         "wall_seconds": wall_seconds(events) if len(events) else math.nan, "_curve": curve})
    seeds = pd.DataFrame(rows)
    target, rule = _target(seeds["best"], mode, target)
    hits = [_first_reaching(curve, target, mode) for curve in seeds.pop("_curve")]
    seeds["reached"] = [hit is not None for hit in hits]
    for column, source in (("epochs_to_target", "trial_epochs"), ("seconds_to_target", "trial_seconds"),
                           ("wall_to_target", "time")):
        seeds[column] = [float(hit[source]) if hit is not None else math.nan for hit in hits]
    seeds = seeds[SEED_COLUMNS]
    return Comparison(metric, mode, target, rule, seeds, _per_strategy(seeds), curves)


def _objective(runs: Mapping[str, Sequence[str | Path]]) -> tuple[str, str]:
    objectives = {}
    for directories in runs.values():
        for directory in directories:
            train = read_spec(directory).get("train") or {}
            objectives[str(directory)] = (train.get("metric", "val_acc"), train.get("mode", "max"))
    distinct = set(objectives.values())
    if len(distinct) > 1:
        raise ValueError("the experiments do not share one objective: " + ", ".join(
            f"{d}: {m} {mt}" for d, (mt, m) in objectives.items()))
    return distinct.pop()


def _target(best: pd.Series, mode: str, given: float | None) -> tuple[float | None, str]:
    if given is not None:
        return float(given), "given"
    reached = best.dropna()
    if reached.empty:
        return None, "no strategy reached any value"
    top = float(reached.max() if mode == "max" else reached.min())
    share = 1 - TARGET_SHARE
    value = top - share * abs(top) if mode == "max" else top + share * abs(top)
    rule = f"{TARGET_SHARE:.0%} of" if mode == "max" else f"{share:.0%} above"
    return value, f"{rule} the best value any strategy reached ({fmt(top)})"


def _first_reaching(curve: pd.DataFrame, target: float | None, mode: str) -> pd.Series | None:
    if target is None or curve.empty:
        return None
    done = curve["best"] >= target if mode == "max" else curve["best"] <= target
    return curve[done].iloc[0] if done.any() else None


def _per_strategy(seeds: pd.DataFrame) -> pd.DataFrame:
    rows = {}
    for strategy, group in seeds.groupby("strategy", sort=False):
        reached = group[group["reached"]]
        low, high = mean_interval(group["best"].tolist())
        rows[strategy] = {
            "seeds": len(group), "best_mean": group["best"].mean(),
            "best_std": group["best"].std() if group["best"].notna().sum() > 1 else math.nan,
            "best_low": low, "best_high": high,
            "trial_epochs": group["trial_epochs"].mean(), "trial_seconds": group["trial_seconds"].mean(),
            "reached": len(reached),
            "epochs_to_target": reached["epochs_to_target"].mean() if len(reached) else math.nan,
            "seconds_to_target": reached["seconds_to_target"].mean() if len(reached) else math.nan,
            "wall_to_target": reached["wall_to_target"].mean() if len(reached) else math.nan,
        }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=STRATEGY_COLUMNS)
    table.index.name = "strategy"
    for column, source in (("epochs_vs_fifo", "epochs_to_target"), ("seconds_vs_fifo", "seconds_to_target")):
        baseline = table.loc[BASELINE, source] if BASELINE in table.index else math.nan
        table[column] = table[source] / baseline if baseline and not math.isnan(baseline) else math.nan
    return table


# --------------------------------------------------------------- rendering
def comparison_blocks(c: Comparison) -> list[Block]:
    """The blocks of ``compare.md`` / ``compare.html``."""
    s = c.strategies
    summary = _summary_table(c)
    per_seed = c.seeds.rename(columns={
        "trial_epochs": "trial-epochs", "trial_seconds": "trial-seconds", "wall_seconds": "wall seconds",
        "epochs_to_target": "trial-epochs to target", "seconds_to_target": "trial-seconds to target",
        "wall_to_target": "wall seconds to target", "best": f"best {c.metric}"})
    per_seed["reached"] = ["yes" if r else "no" for r in per_seed["reached"]]
    target = f"**{fmt(c.target)}**, {c.target_rule}" if c.target is not None else c.target_rule
    return [
        Block("h1", "Strategy comparison"),
        Block("bullets", items=(
            f"objective: {c.mode} `{c.metric}`; strategies: " + ", ".join(f"`{k}`" for k in s.index)
            + f"; {len(c.seeds)} experiment" + ("s" if len(c.seeds) != 1 else ""),
            f"target: {target}",
            "trial-epochs: epochs run, summed over trials (failed ones too); trial-seconds: their `time_total_s` "
            "summed; to target: the compute of every result reported, in order of arrival, until the best so far "
            "reached the target (means over the seeds that reached it)",
            f"total compute: {duration(float(c.seeds['trial_seconds'].sum()))} of trial time over "
            f"{int(c.seeds['trial_epochs'].sum())} trial-epochs",
        )),
        Block("h2", "Strategies"),
        Block("table", table=summary),
        Block("figure", f"Best `{c.metric}` so far against compute (trial-epochs), one line per seed",
              key="trial_epochs"),
        Block("figure", f"Best `{c.metric}` so far against compute (trial-seconds)", key="trial_seconds"),
        Block("h2", "Per seed"),
        Block("table", table=per_seed),
    ]


def _summary_table(c: Comparison) -> pd.DataFrame:
    s = c.strategies
    return pd.DataFrame({
        "strategy": list(s.index), "seeds": s["seeds"].tolist(),
        f"best {c.metric} (mean ± std)": [mean_std(m, sd) for m, sd in zip(s["best_mean"], s["best_std"])],
        f"{LEVEL:.0%} interval over seeds": [_interval(lo, hi) for lo, hi in zip(s["best_low"], s["best_high"])],
        "trial-epochs": s["trial_epochs"].tolist(), "trial-seconds": s["trial_seconds"].tolist(),
        "reached target": [f"{r}/{n}" for r, n in zip(s["reached"], s["seeds"])],
        "trial-epochs to target": s["epochs_to_target"].tolist(),
        "trial-seconds to target": s["seconds_to_target"].tolist(),
        "wall seconds to target": s["wall_to_target"].tolist(),
        f"compute to target vs {BASELINE}": [_ratio(e, t) for e, t in zip(s["epochs_vs_fifo"], s["seconds_vs_fifo"])],
    })


def _interval(low: float, high: float) -> str:
    return "" if math.isnan(low) else f"{fmt(low)} – {fmt(high)}"


def _ratio(epochs: float, seconds: float) -> str:
    """"0.42x epochs, 0.38x seconds" (blank without a baseline to divide by)."""
    if math.isnan(epochs) and math.isnan(seconds):
        return ""
    return f"{fmt(epochs)}x trial-epochs, {fmt(seconds)}x trial-seconds"


def write_comparison(out_dir: str | Path, runs: Mapping[str, Sequence[str | Path]], target: float | None = None,
                     formats: Sequence[str] = ("md", "html")) -> tuple[Comparison, dict[str, Path]]:
    """Write ``compare.md`` and ``compare.html`` into ``out_dir`` (created if needed).

    Args:
        out_dir: where the comparison goes (e.g. ``<storage>/<name>-compare``).
        runs: strategy name -> its experiment directories, one per seed, same space and budget.
        target: the metric value to reach; default 98% of the best any strategy reached.
        formats: ``"md"`` and/or ``"html"``.

    Returns:
        The :class:`Comparison` and the paths written, under ``compare_md`` and ``compare_html``.
    """
    from .html import render_page
    from .markdown import render_blocks

    comparison = comparison_tables(runs, target)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    blocks = comparison_blocks(comparison)
    paths = {}
    if "md" in formats:
        paths["compare_md"] = write_atomic(out_dir / "compare.md", render_blocks(blocks))
    if "html" in formats:
        from .plots import strategy_curves

        labels = {"trial_epochs": "trial-epochs spent (all trials, in order of arrival)",
                  "trial_seconds": "trial-seconds spent (all trials, in order of arrival)"}

        def plot(key: str) -> str:
            return strategy_curves(comparison.curves, comparison.metric, key, comparison.target, labels[key])

        paths["compare_html"] = write_atomic(out_dir / "compare.html",
                                             render_page("tune-app: strategy comparison", blocks, plot))
    return comparison, paths


def comparison_text(c: Comparison) -> str:
    """The strategies table as plain text, for the terminal."""
    from .summary import text_table

    return f"target {c.metric}: {fmt(c.target)}, {c.target_rule}\n" + text_table(_summary_table(c))
