"""``tune-app confirm``'s verdict: the top configs of a sweep, each re-run over new seeds, ranked by their mean.

The confirmation is an experiment of its own in ``<experiment>/confirm/``: one run per
config and seed, every config under the same seeds. ``plan.json`` there says which trials
it repeats (their sweep rank and value) and under which seeds. This module reads both into
the tables of ``confirm.csv`` (one row per config: the per-seed values, mean, std and a
90% t interval) and the blocks of ``confirm.md`` (the ranking, and whether the sweep's
winner held), which ``writer.write_confirmation`` writes. The experiment's own report
reads it too: its ``best_config.yaml`` is then the confirmed winner.

Because the configs share their seeds, the best two are compared seed by seed: the
interval of the mean of their per-seed differences (a paired comparison).

Example:
    >>> c = read_confirmation("tune_results/quickstart")  # doctest: +SKIP
    >>> c.winner, c.held  # doctest: +SKIP
    ('3f2a0005', False)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..trial_result import FAILED_STATUSES, ORIGIN_TRIAL, RUN_SEED
from .blocks import Block
from .formatting import fmt
from .intervals import LEVEL, NOT_DISTINGUISHABLE, excludes_zero, mean_interval
from .results import load_results

CONFIRM_DIR = "confirm"
PLAN_FILE = "plan.json"
CONFIRM_CSV = "confirm.csv"
CONFIRM_MD = "confirm.md"


@dataclass
class Confirmation:
    """The configs re-run over seeds, best mean first.

    ``table`` is indexed by the origin trial id; columns ``sweep_rank``, ``sweep_value``,
    one ``seed <s>`` per seed, ``runs`` (that reported the metric), ``failed``, ``mean``,
    ``std``, ``low``, ``high`` (the 90% t interval of the mean).
    """

    metric: str
    mode: str
    seeds: list[int]
    epochs: int | None
    table: pd.DataFrame
    sweep_winner: str

    @property
    def winner(self) -> str | None:
        """The config with the best mean over its seeds (None before any run reported)."""
        done = self.table[self.table["runs"] > 0]
        return None if done.empty else str(done.index[0])

    @property
    def held(self) -> bool:
        return self.winner == self.sweep_winner

    @property
    def finished(self) -> bool:
        return int(self.table["runs"].sum() + self.table["failed"].sum()) == len(self.table) * len(self.seeds)

    def paired_difference(self) -> tuple[float, float, float] | None:
        """Mean per-seed difference of the best two configs and its 90% t interval; None below two configs."""
        done = self.table[self.table["runs"] > 0]
        if len(done) < 2:
            return None
        first, second = (done.iloc[i][[f"seed {s}" for s in self.seeds]].astype(float) for i in (0, 1))
        differences = (first.to_numpy() - second.to_numpy()).tolist()
        differences = [d for d in differences if not math.isnan(d)]
        low, high = mean_interval(differences)
        return (sum(differences) / len(differences) if differences else math.nan), low, high

    def verdict(self) -> str:
        """One sentence: who won, whether the sweep's winner held, and whether the two are told apart."""
        if self.winner is None:
            return "No confirmation run reported the metric yet."
        row = self.table.loc[self.winner]
        words = (f"`{self.winner}` has the best mean `{self.metric}` over {int(row['runs'])} seeds: "
                 f"{fmt(row['mean'])}" + (f" (90% interval {fmt(row['low'])} – {fmt(row['high'])})"
                                          if not math.isnan(row["low"]) else ""))
        if self.held:
            words += "; the sweep's winner held."
        else:
            sweep = self.table.loc[self.sweep_winner] if self.sweep_winner in self.table.index else None
            words += (f"; the sweep's winner `{self.sweep_winner}` did not hold"
                      + (f" (mean {fmt(sweep['mean'])})" if sweep is not None and sweep["runs"] else "") + ".")
        paired = self.paired_difference()
        if paired is not None:
            difference, low, high = paired
            runner_up = self.table[self.table["runs"] > 0].index[1]
            told = excludes_zero(low, high)
            words += (f" Against `{runner_up}`, seed by seed: {difference:+.4f}"
                      + (f", {LEVEL:.0%} interval [{low:+.4f}, {high:+.4f}]" if not math.isnan(low) else "")
                      + (": " + ("a real difference." if told else f"{NOT_DISTINGUISHABLE}.")))
        return words


def read_plan(confirm_dir: str | Path) -> dict[str, Any] | None:
    """``plan.json`` of a confirmation directory, or None when there is none."""
    path = Path(confirm_dir) / PLAN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def confirmation_tables(confirm_dir: str | Path) -> Confirmation:
    """The :class:`Confirmation` of a confirmation directory (its plan and its runs so far)."""
    confirm_dir = Path(confirm_dir)
    plan = read_plan(confirm_dir)
    if plan is None:
        raise FileNotFoundError(f"no {PLAN_FILE} in {confirm_dir}: not a tune-app confirm directory")
    metric, mode, seeds = plan["metric"], plan["mode"], [int(s) for s in plan["seeds"]]
    runs = load_results(confirm_dir, metric, mode) if any(confirm_dir.glob("experiment_state-*.json")) else None
    rows, index = [], []
    for origin in plan["origins"]:
        tid = origin["trial_id"]
        mine = runs[runs[ORIGIN_TRIAL] == tid] if runs is not None and ORIGIN_TRIAL in runs else pd.DataFrame()
        ok = mine[mine[metric].notna() & ~mine["status"].isin(FAILED_STATUSES)] if len(mine) else mine
        by_seed = {int(s): float(v) for s, v in zip(ok[RUN_SEED], ok[metric])} if len(ok) else {}
        values = list(by_seed.values())
        low, high = mean_interval(values)
        index.append(tid)
        rows.append({
            "sweep_rank": origin["sweep_rank"], "sweep_value": origin["sweep_value"],
            **{f"seed {s}": by_seed.get(s, math.nan) for s in seeds},
            "runs": len(values), "failed": int(mine["status"].isin(FAILED_STATUSES).sum()) if len(mine) else 0,
            "mean": sum(values) / len(values) if values else math.nan,
            "std": pd.Series(values).std() if len(values) > 1 else math.nan, "low": low, "high": high,
        })
    table = pd.DataFrame(rows, index=pd.Index(index, name="origin_trial_id"))
    sign = -1 if mode == "max" else 1
    order = sorted(range(len(table)), key=lambda i: (math.isnan(table["mean"].iloc[i]),
                                                     sign * (0 if math.isnan(table["mean"].iloc[i])
                                                             else table["mean"].iloc[i]), i))
    return Confirmation(metric, mode, seeds, plan.get("epochs"), table.iloc[order], plan["origins"][0]["trial_id"])


def read_confirmation(experiment_dir: str | Path) -> Confirmation | None:
    """The confirmation of an experiment (``<experiment>/confirm/``), or None when it was never confirmed."""
    directory = Path(experiment_dir) / CONFIRM_DIR
    return confirmation_tables(directory) if (directory / PLAN_FILE).is_file() else None


def confirmation_display(c: Confirmation) -> pd.DataFrame:
    """The ranking as report cells."""
    t = c.table
    return pd.DataFrame({
        "rank": range(1, len(t) + 1), "trial": list(t.index), "sweep rank": t["sweep_rank"].tolist(),
        f"sweep {c.metric}": t["sweep_value"].tolist(),
        **{f"seed {s}": t[f"seed {s}"].tolist() for s in c.seeds},
        "mean": t["mean"].tolist(), "std": t["std"].tolist(),
        f"{LEVEL:.0%} interval": ["" if math.isnan(lo) else f"{fmt(lo)} – {fmt(hi)}" for lo, hi in zip(t["low"], t["high"])],
        "failed": t["failed"].tolist(),
    })


def confirmation_blocks(c: Confirmation, heading: str = "h2") -> list[Block]:
    """The confirmation as report blocks (``confirm.md``; a section of the experiment's report)."""
    budget = f"{c.epochs} epochs each, " if c.epochs else ""
    return [
        Block(heading, "Confirmed over seeds"),
        Block("text", f"The sweep's top {len(c.table)} configs, each re-run under the seeds "
                      f"{', '.join(map(str, c.seeds))} ({budget}no early stopping), ranked by their mean `{c.metric}` "
                      f"(each run's best epoch, as in the sweep); the interval is Student's t over the seeds."),
        Block("table", table=confirmation_display(c)),
        Block("text", c.verdict()),
    ]
