"""Strategy comparison: numbers checked by hand and against each experiment directory."""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import pytest
from scipy import stats

from tests.report.synthetic import Trial, spec, write_experiment
from tests.report.test_html import assert_self_contained
from tune_app.report import comparison_tables, comparison_text, load_results, write_comparison


def acc(*values: float) -> list[dict]:
    return [{"val_acc": v, "val_loss": round(1 - v, 6)} for v in values]


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, list[Path]]:
    """Two strategies, two seeds each; every epoch lasts 10 s unless said otherwise.

    fifo/1: A .5 .7 .8 and B .6 .9 .85, both from 0 s        -> best .90, 6 epochs, 60 s, wall 30 s
    fifo/2: C .6 .95 from 0 s; D fails after one 5 s epoch at .99 -> best .95, 3 epochs, 25 s, wall 20 s
    asha/1: E .7 and F .8 .92 from 0 s, G .85 from 10 s      -> best .92, 4 epochs, 40 s, wall 20 s
    asha/2: H .75                                            -> best .75, 1 epoch, 10 s, wall 10 s
    """
    s = spec("cmp", epochs=3)
    return {
        "fifo": [write_experiment(tmp_path / "fifo-1", [Trial("A", {"lr": 0.1}, acc(.5, .7, .8)),
                                                        Trial("B", {"lr": 0.2}, acc(.6, .9, .85))], s),
                 write_experiment(tmp_path / "fifo-2", [Trial("C", {"lr": 0.1}, acc(.6, .95)),
                                                        Trial("D", {"lr": 0.9}, acc(.99), "ERROR", seconds=[5.0],
                                                              error="DivergedError: nan")], s)],
        "asha": [write_experiment(tmp_path / "asha-1", [Trial("E", {"lr": 0.1}, acc(.7)),
                                                        Trial("F", {"lr": 0.2}, acc(.8, .92)),
                                                        Trial("G", {"lr": 0.3}, acc(.85), start=10)], s),
                 write_experiment(tmp_path / "asha-2", [Trial("H", {"lr": 0.1}, acc(.75))], s)],
    }


def seeds_of(comparison, strategy: str) -> list[dict]:
    frame = comparison.seeds[comparison.seeds["strategy"] == strategy]
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in frame.drop(columns=["strategy", "experiment"]).to_dict("records")]


def test_per_seed_numbers_by_hand(runs):
    c = comparison_tables(runs)
    assert (c.metric, c.mode) == ("val_acc", "max")
    assert c.target == pytest.approx(0.95 * 0.98)  # the best any strategy reached: fifo/2's .95
    assert c.target_rule == "98% of the best value any strategy reached (0.95)"
    assert seeds_of(c, "fifo") == [
        {"seed": 1, "trials": 2, "best": 0.9, "trial_epochs": 6, "trial_seconds": 60.0, "wall_seconds": 30.0,
         "reached": False, "epochs_to_target": None, "seconds_to_target": None, "wall_to_target": None},
        # D's .99 does not count (it failed), but its 5 s epoch arrived first and counts as compute
        {"seed": 2, "trials": 2, "best": 0.95, "trial_epochs": 3, "trial_seconds": 25.0, "wall_seconds": 20.0,
         "reached": True, "epochs_to_target": 3.0, "seconds_to_target": 25.0, "wall_to_target": 20.0}]
    assert [s["best"] for s in seeds_of(c, "asha")] == [0.92, 0.75]
    assert [s["reached"] for s in seeds_of(c, "asha")] == [False, False]


def test_per_strategy_means_over_seeds(runs):
    s = comparison_tables(runs).strategies
    assert list(s.index) == ["fifo", "asha"]
    assert s.loc["fifo", "best_mean"] == pytest.approx(0.925)
    assert s.loc["fifo", "best_std"] == pytest.approx(statistics.stdev([0.90, 0.95]))
    assert (s.loc["fifo", "trial_epochs"], s.loc["fifo", "trial_seconds"], s.loc["fifo", "reached"]) == (4.5, 42.5, 1)
    assert (s.loc["fifo", "epochs_to_target"], s.loc["fifo", "seconds_to_target"]) == (3.0, 25.0)
    assert s.loc["asha", "best_mean"] == pytest.approx(0.835)
    assert (s.loc["asha", "trial_epochs"], s.loc["asha", "trial_seconds"], s.loc["asha", "reached"]) == (2.5, 25.0, 0)
    assert math.isnan(s.loc["asha", "epochs_to_target"])


def test_a_given_target_counts_compute_in_order_of_arrival(runs):
    c = comparison_tables(runs, target=0.9)
    assert c.target_rule == "given"
    # fifo/1: A1 B1 (10 s) A2 B2 (20 s): B2 reaches .9 -> 4 epochs, 40 s; fifo/2: D1 C1 C2 -> 3, 25 s
    # asha/1: E1 F1 (10 s) F2 G1 (20 s, F first: created first): F2 reaches .92 -> 3 epochs, 30 s
    assert [(r["epochs_to_target"], r["seconds_to_target"], r["wall_to_target"]) for r in
            seeds_of(c, "fifo") + seeds_of(c, "asha")] == [(4, 40, 20), (3, 25, 20), (3, 30, 20), (None, None, None)]
    assert c.strategies["reached"].tolist() == [2, 1]
    assert c.strategies.loc["fifo", "epochs_to_target"] == 3.5


def test_each_strategy_gets_an_interval_over_seeds_and_compute_to_target_relative_to_fifo(runs):
    c = comparison_tables(runs, target=0.9)
    s = c.strategies
    expected = stats.t.interval(0.9, 1, loc=0.925, scale=stats.sem([0.90, 0.95]))
    assert (s.loc["fifo", "best_low"], s.loc["fifo", "best_high"]) == pytest.approx(expected)
    # to 0.9: fifo 3.5 trial-epochs and 32.5 s on average (4/40 and 3/25), asha 3 and 30 s (its first seed)
    assert s.loc["fifo", "epochs_vs_fifo"] == 1.0
    assert s.loc["asha", "epochs_vs_fifo"] == pytest.approx(3 / 3.5)
    assert s.loc["asha", "seconds_vs_fifo"] == pytest.approx(30 / 32.5)
    text = comparison_text(c)
    assert "90% interval over seeds" in text and "0.8571x trial-epochs, 0.9231x trial-seconds" in text
    without_fifo = comparison_tables({"asha": runs["asha"]}, target=0.9).strategies
    assert math.isnan(without_fifo.loc["asha", "epochs_vs_fifo"])


def independent_numbers(directory: Path, target: float) -> dict:
    """What one computes from an experiment directory without this package's timeline code."""
    results = load_results(directory)
    ok = results[(results["status"] != "ERROR") & results["val_acc"].notna()]
    lines = []
    by_creation = sorted(directory.glob("*/result.json"), key=lambda p: int(p.parent.name.split("_")[3]))
    for n, result in enumerate(by_creation):  # train_fn_<id>_<creation number>_...
        failed = (result.parent / "error.txt").exists()
        previous = 0.0
        for line in map(json.loads, result.read_text().splitlines()):
            lines.append((line["timestamp"], n, line["epoch"], line["time_total_s"] - previous,
                          None if failed else line["val_acc"]))
            previous = line["time_total_s"]
    lines.sort()
    best, seconds, hit = -math.inf, 0.0, None
    for i, (_, _, _, cost, value) in enumerate(lines, start=1):
        seconds += cost
        best = max(best, value) if value is not None else best
        if hit is None and best >= target:
            hit = (i, seconds)
    return {"best": ok["val_acc"].max(), "trial_epochs": int(results["epochs"].sum()),
            "trial_seconds": float(results["time_total_s"].sum()), "to_target": hit}


def test_numbers_match_each_experiment_directory(runs):
    c = comparison_tables(runs, target=0.85)
    for strategy, directories in runs.items():
        for seed, directory in enumerate(directories, start=1):
            mine = c.seeds[(c.seeds["strategy"] == strategy) & (c.seeds["seed"] == seed)].iloc[0]
            expected = independent_numbers(directory, 0.85)
            assert (mine["best"], mine["trial_epochs"], mine["trial_seconds"]) == (
                expected["best"], expected["trial_epochs"], expected["trial_seconds"]), (strategy, seed)
            got = (int(mine["epochs_to_target"]), mine["seconds_to_target"]) if mine["reached"] else None
            assert got == expected["to_target"], (strategy, seed)


def test_mode_min_targets_2_percent_above_the_lowest(tmp_path):
    s = spec("cmp", metric="val_loss", mode="min", epochs=2)
    runs = {"a": [write_experiment(tmp_path / "a", [Trial("A", {"lr": 0.1}, acc(.5, .8))], s)],
            "b": [write_experiment(tmp_path / "b", [Trial("B", {"lr": 0.1}, acc(.6, .7))], s)]}
    c = comparison_tables(runs)
    assert c.target == pytest.approx(0.2 * 1.02)
    assert c.target_rule == "2% above the best value any strategy reached (0.2)"
    assert c.seeds["best"].tolist() == [pytest.approx(0.2), pytest.approx(0.3)]
    assert c.seeds["reached"].tolist() == [True, False]


def test_experiments_with_different_objectives_are_refused(tmp_path, runs):
    other = write_experiment(tmp_path / "other", [Trial("Z", {"lr": 0.1}, acc(.5))],
                             spec("x", metric="val_loss", mode="min"))
    with pytest.raises(ValueError, match="do not share one objective"):
        comparison_tables({**runs, "pbt": [other]})
    with pytest.raises(ValueError, match="nothing to compare"):
        comparison_tables({})


def test_write_comparison_writes_markdown_and_self_contained_html(tmp_path, runs):
    comparison, paths = write_comparison(tmp_path / "out", runs)
    assert paths == {"compare_md": tmp_path / "out" / "compare.md", "compare_html": tmp_path / "out" / "compare.html"}
    md = paths["compare_md"].read_text()
    assert "- target: **0.931**, 98% of the best value any strategy reached (0.95)" in md
    # the 90% t intervals over 2 seeds: 0.925 ± 6.314 * 0.025 and 0.835 ± 6.314 * 0.085
    assert ("| fifo | 2 | 0.925 ± 0.03536 | 0.7672 – 1.083 | 4.5 | 42.5 | 1/2 | 3 | 25 | 20 "
            "| 1x trial-epochs, 1x trial-seconds |" in md)
    assert "| asha | 2 | 0.835 ± 0.1202 | 0.2983 – 1.372 | 2.5 | 25 | 0/2 |  |  |  |  |" in md
    assert "| fifo | 2 | fifo-2 | 2 | 0.95 | 3 | 25 | 20 | yes | 3 | 25 | 20 |" in md
    html = paths["compare_html"].read_text()
    assert_self_contained(html)
    assert len(re.findall(r"</figcaption>\s*<svg", html)) == 2
    assert comparison_text(comparison).splitlines()[0] == (
        "target val_acc: 0.931, 98% of the best value any strategy reached (0.95)")
