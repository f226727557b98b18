"""The report as a list of blocks (headings, bullets, tables, figures), for any renderer.

``report.md`` and ``report.html`` render the same blocks, so they carry the same
content; only HTML draws the ``figure`` blocks.

Example:
    >>> blocks = build_document(analyze("tune_results/quickstart"))  # doctest: +SKIP
    >>> [b.text for b in blocks if b.kind == "h2"]  # doctest: +SKIP
    ['Leaderboard', 'Which values win', 'Numeric parameters', 'Parameter importance', 'Failed trials']
"""

from __future__ import annotations

import pandas as pd

from ..trial_result import FAILED_STATUSES
from .analysis import Analysis, is_missing
from .blocks import Block
from .confirmation import confirmation_blocks
from .diagnostics import CAUSE
from .formatting import duration, fmt, mean_std, percent, value_range
from .importance import SEED
from .microbatches import CAVEAT
from .restarts import TEXT as RESTART_TEXT
from .results import read_origin


def build_document(analysis: Analysis) -> list[Block]:
    """The blocks of the report on ``analysis``, in order."""
    a = analysis
    name = a.spec.get("name", a.experiment_dir.name)
    blocks = [Block("h1", f"Experiment `{name}`"), Block("bullets", items=_header(a))]
    board = a.leaderboard()
    blocks.append(Block("h2", "Leaderboard"))
    blocks.append(Block("table", table=board, index=True) if not board.empty
                  else Block("text", "No trial reported the metric."))
    if a.confirmation is not None:
        blocks += confirmation_blocks(a.confirmation)
    if not a.events.empty:
        blocks.append(Block("figure", f"Learning curves: `{a.metric}` per epoch" + (
            f", coloured by `{a.colour_by}`" if a.colour_by else ""), key="curves"))
        blocks.append(Block("figure", f"Best `{a.metric}` so far, over wall time", key="progress"))
    blocks += _comparisons(a)
    blocks += _two_way(a)
    blocks += _effects(a)
    blocks += _importance(a)
    if not a.stalled.empty:
        blocks += [Block("h2", "Trials that learned but scored at chance"),
                   Block("text", f"Their training loss fell while `{a.metric}` stayed at its chance level. The likely "
                                 f"cause: {CAUSE}."),
                   Block("table", table=a.stalled.reset_index(drop=True))]
    if not a.micro_batched.empty:
        blocks += [Block("h2", "Trials that ran out of memory and went on in micro-batches"), Block("text", CAVEAT),
                   Block("table", table=a.micro_batched)]
    if not a.restarted.empty:
        blocks += [Block("h2", "Restarted trials"), Block("text", RESTART_TEXT), Block("table", table=a.restarted)]
    failed = a.results[a.results["status"].isin(FAILED_STATUSES)]
    if not failed.empty:
        table = failed[["trial_id", "epochs", "error"]].copy()
        table["parameters"] = [_params_text(row, a) for _, row in failed.iterrows()]
        blocks += [Block("h2", "Failed trials"), Block("table", table=table.reset_index(drop=True))]
    return blocks


def _header(a: Analysis) -> tuple[str, ...]:
    spec, o = a.spec, a.overview
    tune = spec.get("tune") or {}
    items = [
        f"task: {spec.get('task', '?')}, model: `{(spec.get('model') or {}).get('name', '?')}`, "
        f"dataset: {(spec.get('data') or {}).get('dataset', '?')}",
        f"search: {tune.get('search_alg', '?')}, trial scheduler: {tune.get('scheduler', '?')}, "
        f"objective: {a.mode} `{a.metric}`",
    ]
    trials = f"trials: {o.trials}" + (" (" + ", ".join(f"{n} {s}" for s, n in o.statuses.items()) + ")"
                                      if o.statuses else "")
    if o.budget is not None and o.statuses.get("TERMINATED"):
        budget = (f"fewer than the {o.budget} epochs of the longest trial" if o.budget_inferred
                  else f"fewer than {o.budget} epochs")
        trials += f"; {o.stopped_early} stopped early by the trial scheduler ({budget})"
    items.append(trials)
    if o.best_value is not None:
        items.append(f"best `{a.metric}`: **{o.best_value:.4f}** (trial `{o.best_trial}`)")
    c = a.confirmation
    if c is not None and c.winner is not None:
        items.append(f"confirmed over {len(c.seeds)} new seeds (tune-app confirm): `{c.winner}` "
                     + ("held" if c.held else f"won instead of `{c.sweep_winner}`")
                     + "; best_config.yaml is its config")
    if o.timed_trials:
        items.append(f"compute: {duration(o.trial_seconds)} of trial time over {o.trial_epochs} trial-epochs, "
                     f"{duration(o.mean_trial_seconds)} per trial on average ({o.timed_trials} trials); "
                     f"wall time {duration(o.wall_seconds)}")
    items += _origin(a)
    skipped = a.data.get("skipped") or []
    if skipped:
        shown = ", ".join(f"`{p}`" for p in skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        items.append(f"data: {len(skipped)} unreadable image{'s' * (len(skipped) != 1)} left out "
                     f"(data.skip_bad_images): {shown}")
    ignored = a.data.get("ignored") or []
    if ignored:
        shown = ", ".join(f"`{p}`" for p in ignored[:3]) + (f" and {len(ignored) - 3} more" if len(ignored) > 3 else "")
        items.append(f"data: {len(ignored)} file{'s' * (len(ignored) != 1)} in the image folders ignored "
                     f"(not images, by extension): {shown}")
    return tuple(items)


def _origin(a: Analysis) -> list[str]:
    """Where the search started from (--warm-start) and how it grew (tune-app extend)."""
    origin = read_origin(a.experiment_dir)
    items = []
    for warm in origin.get("warm_start", []):
        dropped = warm.get("dropped") or {}
        items.append(f"warm-started from {', '.join(f'`{d}`' for d in warm.get('from', []))}: "
                     f"{warm.get('trials', 0)} earlier trials given to the search first"
                     + (f", {sum(dropped.values())} dropped (" + "; ".join(f"{n}: {why}" for why, n in dropped.items())
                        + ")" if dropped else "") + "; they are not in this report's tables")
    extended = origin.get("extended", [])
    if extended:
        items.append(f"extended {len(extended)} time{'s' * (len(extended) != 1)} with tune-app extend: "
                     + ", ".join(f"+{e.get('trials')} trials" for e in extended) + " (the same study)")
    return items


def _comparisons(a: Analysis) -> list[Block]:
    if not a.comparisons:
        return []
    blocks = [Block("h2", "Which values win"), Block("text", (
        f"One table per searched categorical parameter: `{a.metric}` over the trials that reported it and did "
        f"not fail, best value first; `failed` counts the trials that errored, `stopped early` those the trial "
        f"scheduler ended before their last epoch. Trials where a parameter does not exist are left out. "
        f"`best` and `mean` take each trial's best epoch, whatever its budget; at an equal budget instead, "
        f"`mean at epoch N` compares every trial at the last epoch all of them reached, `mean at epoch "
        f"{a.overview.budget or 'B'}` the trials that ran the whole budget, and `stopped at` shows which share "
        f"of a value's trials the trial scheduler stopped at each epoch. Below each table, the best two values' "
        f"difference at epoch N with a 90% bootstrap interval over their trials."))]
    for name, table in a.comparisons.items():
        condition = a.parameter(name).condition
        when = " (when " + ", ".join(f"{k} = {v}" for k, v in condition.items()) + ")" if condition else ""
        blocks.append(Block("h3", f"`{name}`{when}"))
        blocks.append(Block("table", table=comparison_display(table)))
        if name in a.separations:
            blocks.append(Block("text", a.separations[name].sentence(lambda v: f"`{fmt(v)}`")))
        blocks.append(Block("figure", f"`{a.metric}` per value of `{name}`", key=f"values:{name}"))
    return blocks


def comparison_display(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`~tune_app.report.tables.compare_values` table as report cells."""
    name = table.index.name
    return pd.DataFrame({
        name: [fmt(v) for v in table.index],
        "trials": table["trials"].tolist(),
        "best": table["best"].tolist(),
        "mean ± std": [mean_std(m, s) for m, s in zip(table["mean"], table["std"])],
        "median": table["median"].tolist(),
        "mean epochs": table["mean_epochs"].tolist(),
        "stopped early": table["stopped_early"].tolist(),
        "failed": table["failed"].tolist(),
        **_equal_budget_cells(table),
    })


def _equal_budget_cells(table: pd.DataFrame) -> dict[str, list]:
    """The equal-budget columns of a comparison (none for a table without them)."""
    if "mean_at_epoch" not in table:
        return {}
    epoch, budget = table.attrs.get("epoch"), table.attrs.get("budget")
    cells = {f"mean at epoch {epoch if epoch is not None else '?'}": table["mean_at_epoch"].tolist()}
    if budget is not None and epoch != budget:  # else every compared trial ran the whole budget: the same column
        cells["full-budget trials"] = table["full_trials"].tolist()
        cells[f"mean at epoch {budget}"] = table["full_mean"].tolist()
    cells["stopped at"] = table["stopped_at"].tolist()
    return cells


def _two_way(a: Analysis) -> list[Block]:
    blocks = []
    for rows, columns, means, counts in a.two_way:
        cells = pd.DataFrame(
            [[f"{fmt(float(m))} ({n})" if n else "" for m, n in zip(means.loc[r], counts.loc[r])]
             for r in means.index],
            columns=[fmt(c) for c in means.columns])
        cells.insert(0, f"{rows} \\ {columns}", [fmt(r) for r in means.index])
        shade = (means if a.mode == "max" else -means).reset_index(drop=True)  # higher shade = better
        shade.columns = list(cells.columns[1:])
        blocks += [Block("h2", f"`{rows}` × `{columns}`"),
                   Block("text", f"Mean `{a.metric}` over the trials of each pair of values (trials in brackets); "
                                 f"rows and columns best first."),
                   Block("table", table=cells, shade=shade)]
    return blocks


def _effects(a: Analysis) -> list[Block]:
    if a.effects.empty:
        return []
    e = a.effects
    table = pd.DataFrame({
        "parameter": e["parameter"], "scale": e["scale"], "trials": e["trials"], "spearman": e["spearman"],
        "better": e["better"], "top trials": e["top_trials"],
        "best range": [value_range(lo, hi) for lo, hi in zip(e["best_low"], e["best_high"])],
        "share of searched range": [percent(s) for s in e["range_share"]],
    })
    return [
        Block("h2", "Numeric parameters"),
        Block("text", f"Spearman's rank correlation of each numeric parameter with `{a.metric}`, over the trials that "
                      f"have it (`better`: which end wins), and the range the top quarter of those trials spans "
                      f"(its width as a share of the searched range, in log space for log-scale parameters)."),
        Block("table", table=table),
        Block("figure", f"`{a.metric}` against each numeric range (hollow: stopped early)", key="numeric"),
    ]


def _importance(a: Analysis) -> list[Block]:
    imp = a.importance
    blocks = [Block("h2", "Parameter importance")]
    if imp is None:
        return blocks + [Block("text", "Computed when the sweep ends; `tune-app report DIR` computes it now.")]
    if imp.note:
        blocks.append(Block("text", imp.note[0].upper() + imp.note[1:] + "."))
    else:
        blocks.append(Block("text", (
            f"fANOVA (Optuna's FanovaImportanceEvaluator, seed {SEED}) on a study rebuilt from the {imp.trials} "
            + (f"trials of a random sample (seed {SEED}) of the {imp.sampled_from} " if imp.sampled_from else "")
            + f"trials that reported `{a.metric}` (those stopped early at their best value): each parameter's share "
            f"of the variance of `{a.metric}`; the shares sum to 1.")))
        table = pd.DataFrame({"parameter": list(imp.importances), "importance": list(imp.importances.values())})
        blocks += [Block("table", table=table), Block("figure", "Parameter importance", key="importance")]
    if imp.left_out:
        blocks.append(Block("text", "Left out (Optuna assesses only parameters present in every trial): " + "; ".join(
            f"`{name}` ({why})" for name, why in imp.left_out.items()) + "."))
    return blocks


def _params_text(row: pd.Series, a: Analysis) -> str:
    return ", ".join(f"{p.name}={fmt(row[p.name])}" for p in a.parameters if not is_missing(row[p.name]))
