"""Plots for ``report.html`` and ``compare.html``, as inline SVG text.

matplotlib draws with its object API (``Figure``, no pyplot): no GUI backend, no global
state. SVG keeps text as text (``svg.fonttype: none``) and is made reproducible: no date,
a fixed hash salt per plot, seeded jitter, so two reports of the same results are
byte-identical.

Example:
    >>> svg = learning_curves(analyze("tune_results/quickstart"))  # doctest: +SKIP
    >>> svg.startswith("<svg")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from ..trial_result import FAILED_STATUSES, epoch_of
from .analysis import Analysis, is_missing
from .formatting import fmt
from .tables import compare_values, scored, stopped_early
from .timeline import best_so_far

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94"]
# boxplot's `vert` became `orientation` in matplotlib 3.10.
_HORIZONTAL = ({"orientation": "horizontal"} if tuple(int(p) for p in matplotlib.__version__.split(".")[:2]) >= (3, 10)
               else {"vert": False})
ABSENT = "#b0b0b0"  # trials where the colouring parameter does not exist
STYLE = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
         "axes.grid": True, "grid.alpha": 0.3, "font.family": ["DejaVu Sans", "Arial", "sans-serif"]}


def to_svg(fig: Figure, salt: str) -> str:
    """The figure as an ``<svg>`` element to inline in HTML (no XML prolog, no date)."""
    buffer = io.StringIO()
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": salt}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})  # layout: constrained
    text = buffer.getvalue()
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)  # RDF boilerplate
    return text.strip()


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(STYLE):
        return Figure(figsize=(width, height), layout="constrained")


def value_colours(a: Analysis, name: str | None) -> dict[str, str]:
    """A colour per value of ``name`` (by its text), in the order of its comparison table (best first)."""
    if name is None:
        return {}
    table = a.comparisons.get(name)
    values = list(table.index) if table is not None else list(dict.fromkeys(a.results[name].dropna()))
    return {fmt(v): PALETTE[i % len(PALETTE)] for i, v in enumerate(values)}


def _colour(config: Mapping[str, Any], name: str | None, colours: Mapping[str, str]) -> str:
    if name is None:
        return PALETTE[0]
    value = config.get(name)
    return ABSENT if is_missing(value) else colours.get(fmt(value), ABSENT)


def _legend(ax: Any, colours: Mapping[str, str], title: str | None, extra: Sequence[Line2D] = ()) -> None:
    handles = [Line2D([], [], color=c, lw=2, label=v) for v, c in colours.items()] + list(extra)
    if handles:
        ax.legend(handles=handles, title=title, fontsize=8, title_fontsize=8, loc="best", framealpha=0.8)


# ------------------------------------------------------------ experiment
# Above this many points (or line vertices) a layer is drawn as an embedded PNG inside the SVG:
# 100,000 epoch results as SVG paths took seconds to draw and megabytes of HTML.
RASTER_ABOVE = 5000


def _many(points: int) -> bool:
    return points > RASTER_ABOVE


def learning_curves(a: Analysis) -> str:
    """The metric per epoch of every trial, coloured by ``a.colour_by``; failed trials dashed, best bold."""
    colours = value_colours(a, a.colour_by)
    fig = _figure(9, 4.2)
    ax = fig.add_subplot()
    best = a.overview.best_trial
    # One LineCollection per colour and line style: 10,000 trials as 10,000 Line2D artists took 27 s.
    groups: dict[tuple[str, bool], list[list[tuple[float, float]]]] = {}
    ends: list[tuple[float, float, str]] = []  # where failed trials stopped
    for trial in a.trials:
        points = [(epoch_of(r), r.get(a.metric)) for r in trial.history]
        points = [(e, v) for e, v in points if isinstance(v, (int, float)) and math.isfinite(v)]
        if not points:
            continue
        failed, colour = trial.status in FAILED_STATUSES, _colour(trial.config, a.colour_by, colours)
        if trial.trial_id == best:
            x, y = zip(*points)
            ax.plot(x, y, color=colour, lw=2.6, ls="--" if failed else "-", zorder=3)
            continue
        groups.setdefault((colour, failed), []).append(points)
        if failed:
            ends.append((*points[-1], colour))
    for (colour, failed), lines in groups.items():
        ax.add_collection(LineCollection(lines, colors=colour, linewidths=1.1, alpha=0.65,
                                         linestyles="--" if failed else "-", zorder=2,
                                         rasterized=_many(sum(map(len, lines)))))
    if ends:
        ax.scatter([e[0] for e in ends], [e[1] for e in ends], c=[e[2] for e in ends], marker="x", zorder=2)
    ax.autoscale_view()
    if best is not None:
        trial = next(t for t in a.trials if t.trial_id == best)
        ax.annotate(f"best: {best}", xy=(len(trial.history), a.overview.best_value), fontsize=8, ha="right",
                    va="bottom", xytext=(-2, 5), textcoords="offset points")
    ax.set_xlabel("epoch")
    ax.set_ylabel(a.metric)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    extra = []
    if a.colour_by is not None and any(is_missing(t.config.get(a.colour_by)) for t in a.trials if t.history):
        extra.append(Line2D([], [], color=ABSENT, lw=2, label="(absent)"))  # a conditional parameter
    if a.results["status"].isin(FAILED_STATUSES).any():
        extra.append(Line2D([], [], color="#555", ls="--", marker="x", label="failed"))
    _legend(ax, colours, a.colour_by, extra)
    return to_svg(fig, "curves")


def progress(a: Analysis) -> str | None:
    """Best metric so far against wall time since the first trial started; None without timestamps."""
    events = best_so_far(a.events.dropna(subset=["time"]), a.metric, a.mode)
    if events.empty:
        return None
    minutes = events["time"].max() > 120
    t = events["time"] / (60 if minutes else 1)
    fig = _figure(9, 3.4)
    ax = fig.add_subplot()
    ax.scatter(t, events[a.metric], s=10, color="#999", alpha=0.5, label="a trial's epoch result", zorder=2,
               rasterized=_many(len(t)))
    ax.step(t, events["best"], where="post", color=PALETTE[0], lw=2, label="best so far", zorder=3)
    ax.set_xlabel("wall time since the first trial started (" + ("min" if minutes else "s") + ")")
    ax.set_ylabel(a.metric)
    ax.legend(fontsize=8, loc="best")
    return to_svg(fig, "progress")


def numeric_effects_plot(a: Analysis) -> str | None:
    """The metric against each numeric parameter (log axis for log-scale ones, ``lr`` first)."""
    # Choices among numbers (weight_decay: 0, 1e-4, 1e-2) have their own per-value plots.
    names = [n for n in (a.effects["parameter"] if not a.effects.empty else []) if a.parameter(n).kind != "categorical"]
    ok = scored(a.results, a.metric)
    if not names or ok.empty:
        return None
    names.sort(key=lambda n: n != "lr")
    early = stopped_early(a.results, a.overview.budget)[ok.index]
    colours = value_colours(a, a.colour_by)
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig = _figure(3.3 * columns, 2.8 * rows)
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, columns, i + 1)
        present = ok[name].notna()
        for full in (True, False):
            mine = present & (~early if full else early)  # hollow markers: stopped early
            part = ok[mine]
            fill = [_colour(row, a.colour_by, colours) for _, row in part.iterrows()]
            ax.scatter(pd.to_numeric(part[name]), part[a.metric], s=22, zorder=3,
                       c=fill if full else "none", edgecolors=fill, linewidths=1.2, rasterized=_many(len(ok)))
        if a.parameter(name).log:
            ax.set_xscale("log")
            # Plain numbers (0.001) instead of mathtext powers: easier to read, and 5x cheaper to draw.
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            ax.xaxis.set_major_locator(MaxNLocator(5, integer=a.parameter(name).kind == "int"))
        ax.set_xlabel(name)
        ax.set_ylabel(a.metric)
    if colours or early.any():
        extra = []
        if a.colour_by is not None and ok[a.colour_by].isna().any():
            extra.append(Line2D([], [], color=ABSENT, marker="o", ls="", label="(absent)"))
        if early.any():
            extra.append(Line2D([], [], color="#555", marker="o", ls="", mfc="none", label="stopped early"))
        handles = [Line2D([], [], color=c, marker="o", ls="", label=v) for v, c in colours.items()] + extra
        fig.legend(handles=handles, title=a.colour_by, fontsize=8, title_fontsize=8, loc="outside right upper")
    return to_svg(fig, "numeric")


def value_distribution(a: Analysis, name: str) -> str | None:
    """Box and jittered points of the metric for each value of ``name``, best value on top."""
    table = a.comparisons.get(name)
    if table is None:
        table = compare_values(a.results, name, a.metric, a.mode, a.overview.budget)
    ok = scored(a.results, a.metric)
    values = [v for v, n in zip(table.index, table["trials"]) if n > 0]
    if not values:
        return None
    colours = value_colours(a, name)
    fig = _figure(5.6, 0.42 * max(len(values), 1) + 1.0)
    ax = fig.add_subplot()
    data = [ok.loc[ok[name].map(lambda x, v=v: fmt(x) == fmt(v)), a.metric].astype(float).to_numpy() for v in values]
    positions = list(range(len(values), 0, -1))  # best value at the top
    ax.boxplot(data, positions=positions, **_HORIZONTAL, widths=0.55, showfliers=False,
               medianprops={"color": "#333"}, boxprops={"color": "#777"}, whiskerprops={"color": "#777"},
               capprops={"color": "#777"})
    rng = np.random.default_rng(0)  # the same jitter every time
    dense = _many(sum(map(len, data)))
    for pos, v, d in zip(positions, values, data):
        ax.scatter(d, pos + rng.uniform(-0.18, 0.18, len(d)), s=14, color=colours.get(fmt(v), PALETTE[0]),
                   alpha=0.8, zorder=3, rasterized=dense)
    ax.set_yticks(positions, [fmt(v) for v in values])
    ax.set_xlabel(a.metric)
    ax.set_ylabel(name)
    return to_svg(fig, f"values:{name}")


def importance_bars(a: Analysis) -> str | None:
    """Horizontal bars of each parameter's fANOVA importance, most important on top."""
    if a.importance is None or not a.importance.importances:
        return None
    items = list(a.importance.importances.items())[::-1]
    fig = _figure(6, 0.35 * len(items) + 0.9)
    ax = fig.add_subplot()
    ax.barh([n for n, _ in items], [v for _, v in items], color=PALETTE[0])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the variance of " + a.metric)
    return to_svg(fig, "importance")


# ------------------------------------------------------------ comparison
def strategy_curves(curves: Mapping[str, Sequence[pd.DataFrame]], metric: str, x: str, target: float | None,
                    xlabel: str) -> str:
    """Best-so-far metric against cumulative compute: one colour per strategy, one line per seed."""
    fig = _figure(9, 4)
    ax = fig.add_subplot()
    for i, (strategy, seeds) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        for j, curve in enumerate(seeds):
            curve = curve.dropna(subset=["best"])
            if not curve.empty:
                ax.step(curve[x], curve["best"], where="post", color=colour, lw=1.6, alpha=0.85,
                        label=strategy if j == 0 else None)
    if target is not None:
        ax.axhline(target, color="#333", ls=":", lw=1, label=f"target {fmt(target)}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"best {metric} so far")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    return to_svg(fig, f"strategies:{x}")
