"""The confirmation's verdict on hand-made experiments: ranking by mean over seeds, the paired interval,
and best_config.yaml switching to the confirmed winner."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from scipy import stats

from tests.report.synthetic import Trial, known, spec, write_experiment
from tune_app.report import write_reports
from tune_app.report.confirmation import CONFIRM_DIR, PLAN_FILE, confirmation_tables
from tune_app.report.writer import write_confirmation


def acc(value: float, epochs: int = 4) -> list[dict]:
    return [{"val_acc": value - 0.01 * (epochs - e), "val_loss": 1 - value} for e in range(1, epochs + 1)]


def confirmed(parent: Path, values: dict[str, list[float]], seeds=(1, 2, 3)) -> Path:
    """A confirm/ directory under ``parent`` whose runs of each origin trial reached ``values`` (one per seed)."""
    trials = [Trial(f"{origin}-s{seed}", {"lr": 0.001, "seed": seed, "origin_trial": origin}, acc(value))
              for origin, per_seed in values.items() for seed, value in zip(seeds, per_seed)]
    directory = write_experiment(parent / CONFIRM_DIR, trials, spec("confirm", epochs=4, scheduler="fifo"))
    sweep = {"t3": 0.95, "t1": 0.90, "t5": 0.85}
    plan = {"experiment": parent.name, "metric": "val_acc", "mode": "max", "top": len(values), "seeds": list(seeds),
            "epochs": 4, "origins": [{"trial_id": t, "sweep_rank": i, "sweep_value": sweep[t], "config": {}}
                                     for i, t in enumerate(values, start=1)]}
    (directory / PLAN_FILE).write_text(json.dumps(plan))
    return directory


def test_configs_rank_by_their_mean_over_seeds_with_a_t_interval(tmp_path):
    parent = known(tmp_path / "known")
    c = confirmation_tables(confirmed(parent, {"t3": [0.88, 0.90, 0.86], "t1": [0.93, 0.93, 0.94]}))
    assert list(c.table.index) == ["t1", "t3"] and c.winner == "t1" and c.sweep_winner == "t3" and not c.held
    row = c.table.loc["t3"]
    assert [row["seed 1"], row["seed 2"], row["seed 3"]] == [0.88, 0.90, 0.86]
    assert row["mean"] == pytest.approx(0.88) and row["std"] == pytest.approx(statistics.stdev([0.88, 0.90, 0.86]))
    expected = stats.t.interval(0.9, 2, loc=0.88, scale=stats.sem([0.88, 0.90, 0.86]))
    assert (row["low"], row["high"]) == pytest.approx(expected)
    difference, low, high = c.paired_difference()  # t1 - t3 seed by seed: 0.05, 0.03, 0.08
    assert difference == pytest.approx(0.16 / 3)
    assert (low, high) == pytest.approx(stats.t.interval(0.9, 2, loc=0.16 / 3, scale=stats.sem([0.05, 0.03, 0.08])))
    assert "the sweep's winner `t3` did not hold" in c.verdict() and "a real difference" in c.verdict()
    assert c.finished


def test_best_config_switches_to_the_confirmed_winner_and_the_report_says_so(tmp_path):
    parent = known(tmp_path / "known")
    write_confirmation(confirmed(parent, {"t3": [0.88, 0.90, 0.86], "t1": [0.93, 0.92, 0.94]}))
    _, paths = write_reports(parent, best_config=lambda flat: {"search": flat})
    text = paths["best_config"].read_text()
    assert text.startswith("# Trial t1, the best mean val_acc over seeds 1, 2, 3 (tune-app confirm)")
    assert "lr: 0.001" in text  # t1's config, not t3's (lr 0.003)
    report = paths["report"].read_text()
    assert "confirmed over 3 new seeds (tune-app confirm): `t1` won instead of `t3`" in report
    assert "## Confirmed over seeds" in report and "| 1 | t1 | 2 | 0.9 | 0.93 | 0.92 | 0.94 |" in report
    md = (parent / CONFIRM_DIR / "confirm.md").read_text()
    assert md.startswith("# Confirmation over seeds") and "did not hold" in md
    csv = (parent / CONFIRM_DIR / "confirm.csv").read_text().splitlines()
    assert csv[0] == "origin_trial_id,sweep_rank,sweep_value,seed 1,seed 2,seed 3,runs,failed,mean,std,low,high"
    assert csv[1].startswith("t1,2,0.9,0.93,0.92,0.94,3,0,")


def test_a_winner_that_held_keeps_best_config_and_close_configs_are_not_told_apart(tmp_path):
    parent = known(tmp_path / "known")
    c, _ = write_confirmation(confirmed(parent, {"t3": [0.91, 0.93, 0.90], "t1": [0.92, 0.90, 0.91]}))
    assert c.held and "the sweep's winner held" in c.verdict()
    assert "not distinguishable with these trials" in c.verdict()
    _, paths = write_reports(parent, best_config=lambda flat: {"search": flat})
    assert paths["best_config"].read_text().startswith("# Trial t3, the best mean val_acc over seeds")
    assert "`t3` held" in paths["report"].read_text()


def test_an_unfinished_confirmation_counts_what_ran(tmp_path):
    parent = known(tmp_path / "known")
    c = confirmation_tables(confirmed(parent, {"t3": [0.9, 0.91], "t1": [0.92]}, seeds=(1, 2)))
    assert not c.finished and c.table.loc["t1", "runs"] == 1 and c.winner == "t1"
