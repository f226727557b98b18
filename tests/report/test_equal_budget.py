"""Equal-budget comparisons: a synthetic ASHA experiment whose early-stopped trials reverse the plain means."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.synthetic import Trial, spec, write_experiment
from tune_app.report import analyze, summary_text, write_reports
from tune_app.report.intervals import NOT_DISTINGUISHABLE

PARAMETERS = {"scheduler": {"type": "categorical", "choices": ["onecycle", "cosine"], "condition": {}},
              "loss": {"type": "categorical", "choices": ["ce", "focal"], "condition": {}}}


def curve(*values: float) -> list[dict]:
    return [{"val_acc": v, "val_loss": 1 - v} for v in values]


@pytest.fixture
def reversed_by_stopping(tmp_path: Path) -> Path:
    """`onecycle`: 3 of 4 trials stopped at epoch 1 (the rung), one full at 0.95; `cosine`: 4 full trials at 0.8.

    Plain means put cosine first (0.80 vs 0.62); at epoch 1 onecycle leads (0.50 vs 0.45), and so it
    does among the full-budget trials (0.95 vs 0.80). `loss` is the same in both halves: not told apart.
    """
    trials = [
        Trial("a1", {"scheduler": "onecycle", "loss": "ce"}, curve(0.49)),
        Trial("a2", {"scheduler": "onecycle", "loss": "focal"}, curve(0.51)),
        Trial("a3", {"scheduler": "onecycle", "loss": "ce"}, curve(0.52)),
        Trial("a4", {"scheduler": "onecycle", "loss": "focal"}, curve(0.48, 0.7, 0.95)),
        Trial("b1", {"scheduler": "cosine", "loss": "ce"}, curve(0.44, 0.6, 0.79)),
        Trial("b2", {"scheduler": "cosine", "loss": "focal"}, curve(0.45, 0.6, 0.80)),
        Trial("b3", {"scheduler": "cosine", "loss": "ce"}, curve(0.46, 0.6, 0.81)),
        Trial("b4", {"scheduler": "cosine", "loss": "focal"}, curve(0.45, 0.6, 0.80)),
    ]
    return write_experiment(tmp_path / "reversed", trials, spec("reversed", epochs=3), PARAMETERS)


def test_mean_at_the_epoch_every_trial_reached_reverses_the_plain_means(reversed_by_stopping):
    table = analyze(reversed_by_stopping).comparisons["scheduler"]
    assert table.attrs == {"epoch": 1, "budget": 3}
    assert table.loc["cosine", "mean"] > table.loc["onecycle", "mean"]  # the plain means mislead
    assert table.loc["onecycle", "mean_at_epoch"] == pytest.approx(0.5)
    assert table.loc["cosine", "mean_at_epoch"] == pytest.approx(0.45)
    assert table.loc["onecycle", "full_trials"] == 1 and table.loc["cosine", "full_trials"] == 4
    assert table.loc["onecycle", "full_mean"] == pytest.approx(0.95)
    assert table.loc["cosine", "full_mean"] == pytest.approx(0.80)
    assert table.loc["onecycle", "stopped_at"] == "epoch 1: 75%"
    assert table.loc["cosine", "stopped_at"] == ""


def test_the_best_two_values_get_an_interval_and_a_verdict(reversed_by_stopping):
    a = analyze(reversed_by_stopping)
    scheduler, loss = a.separations["scheduler"], a.separations["loss"]
    assert (scheduler.first, scheduler.second, scheduler.epoch) == ("onecycle", "cosine", 1)
    low, high = scheduler.interval
    assert 0 < low <= scheduler.difference <= high
    assert scheduler.winner == "onecycle" and "onecycle is better at epoch 1" in scheduler.sentence()
    assert loss.winner is None and loss.verdict() == NOT_DISTINGUISHABLE
    low, high = loss.interval
    assert low < 0 < high


def test_reports_and_the_terminal_show_the_equal_budget_columns_and_the_verdict(reversed_by_stopping):
    _, paths = write_reports(reversed_by_stopping)
    markdown = paths["report"].read_text()
    assert "| mean at epoch 1 | full-budget trials | mean at epoch 3 | stopped at |" in markdown
    assert "`onecycle` − `cosine`, mean at epoch 1: +0.0500, 90% bootstrap interval" in markdown
    assert f"{NOT_DISTINGUISHABLE}." in markdown
    assert "mean at epoch 1" in paths["html"].read_text()
    text = summary_text(reversed_by_stopping, by=("scheduler",))
    assert "mean at epoch 1" in text and "onecycle is better at epoch 1" in text


def test_too_few_trials_say_so(tmp_path):
    trials = [Trial("a", {"loss": "ce"}, curve(0.9, 0.9, 0.9)), Trial("b", {"loss": "focal"}, curve(0.5, 0.6, 0.7))]
    a = analyze(write_experiment(tmp_path / "two", trials, spec("two", epochs=3), PARAMETERS))
    assert a.comparisons["loss"].attrs["epoch"] == 3
    assert "needs at least 2 trials that reached epoch 3; here 1 and 1" in a.separations["loss"].verdict()
