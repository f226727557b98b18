"""The plain-text summary printed at the end of `tune-app search`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.report.synthetic import known
from tests.report.test_results import make_experiment
from tune_app.report import summary_text
from tune_app.report.summary import text_table


def test_summary_shows_the_leaderboard_head_the_first_categorical_table_and_the_paths(tmp_path):
    exp = known(tmp_path / "known")
    text = summary_text(exp, {"results": Path("/x/results.csv"), "report": Path("/x/report.md")}, top=3)
    assert text.splitlines() == [
        "Leaderboard: best 3 of 7 trials by val_acc (max)",
        "rank  trial_id  status      epochs  val_acc      lr  freeze_depth  loss   loss.gamma  scheduler"
        "  scheduler.step_size",
        "   1  t3        TERMINATED       4     0.95   0.003             0  focal           2  cosine",
        "   2  t1        TERMINATED       4      0.9   0.001             0  ce                 cosine",
        "   3  t5        TERMINATED       4     0.85  0.0005             1  focal           2  cosine",
        "best val_acc: 0.9500 (trial t3) with lr=0.003, freeze_depth=0, loss=focal, loss.gamma=2, scheduler=cosine",
        "",
        "loss, best value first (val_acc over the trials that did not fail):",
        "loss   trials  best       mean ± std  median  mean epochs  stopped early  failed  mean at epoch 1"
        "  full-budget trials  mean at epoch 4  stopped at",
        "focal       4  0.95  0.7875 ± 0.1493     0.8         2.75              2       0              0.7"
        "                   2              0.9  epoch 1: 25%, epoch 2: 25%",
        "ce          3   0.9        0.8 ± 0.1     0.8        3.333              1       1              0.7"
        "                   2             0.84  epoch 2: 33%",
        "focal − ce, mean at epoch 1: +0.0000, 90% bootstrap interval [-0.1000, +0.0750] over 4 and 3 trials: "
        "not distinguishable with these trials.",
        "",
        "reports:",
        "  results: /x/results.csv",
        "  report:  /x/report.md",
    ]


def test_summary_table_follows_by(tmp_path):
    text = summary_text(known(tmp_path / "known"), by=("scheduler",))
    assert "scheduler, best value first (val_acc over the trials that did not fail):" in text
    assert "cosine          4  0.95  0.8625 ± 0.08539   0.875          3.5              1       1" in text
    assert "reports:" not in text


def test_summary_without_any_metric(tmp_path):
    exp = make_experiment(tmp_path / "e", trials=[(6, "aaaa0006", "PENDING", {"lr": 0.02}, None, None)], order=[6])
    assert summary_text(exp) == "No trial reported val_acc."


def test_text_table_aligns_numbers_right_and_text_left():
    frame = pd.DataFrame({"name": ["a", "bbb"], "value": [0.123456, 12.0], "note": [None, "x"]})
    assert text_table(frame) == "name   value  note\na     0.1235\nbbb       12  x"
