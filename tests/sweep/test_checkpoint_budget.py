"""The experiment-wide checkpoint budget in a real sweep: the disk stays within the bound printed at the start."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tune_app.experiment.checkpoints import TrialCheckpoints
from tune_app.sweep.disk import MB, used_bytes

pytestmark = pytest.mark.ray


def printed_budget(stdout: str) -> int:
    match = re.search(r"^disk: checkpoints use at most (\d+) MB", stdout, re.MULTILINE)
    assert match, stdout
    return int(match.group(1)) * MB


def test_a_12_trial_asha_sweep_never_exceeds_its_printed_budget(asha_sweep):
    assert asha_sweep.returncode == 0, asha_sweep.stdout
    budget = printed_budget(asha_sweep.stdout)
    print(f"budget {budget / MB:.1f} MB, most seen {asha_sweep.peak_checkpoints / MB:.2f} MB of checkpoints "
          f"({asha_sweep.peak_total / MB:.2f} MB in all)")
    assert 0 < asha_sweep.peak_checkpoints <= budget
    # Without the budget, the checkpoints every trial kept (2 each) would pass it.
    full = float(re.search(r"full checkpoints of ([\d.]+) MB", asha_sweep.stdout).group(1)) * MB
    assert 12 * 2 * full > budget
    assert re.search(r"^disk: \d+ MB used, \d+ MB of it checkpoints and best_model/", asha_sweep.stdout, re.MULTILINE)


def test_ended_trials_keep_nothing_but_the_three_best_trials_best_weights(asha_sweep):
    results = pd.read_csv(asha_sweep.experiment / "results.csv")
    assert len(results) == 12 and set(results["status"]) == {"TERMINATED"}
    assert (results["epochs"] < 2).any()  # ASHA stopped some
    top3 = set(results.sort_values("val_acc", ascending=False, kind="stable")["trial_id"].head(3))
    for directory in asha_sweep.experiment.glob("train_trial_*"):
        trial_id = directory.name.split("_")[2]
        saved = TrialCheckpoints(directory).list()
        with_weights = [c for c in saved if c.weights]
        assert all(c.ended == "finished" for c in saved), directory.name
        if trial_id in top3:  # its best epoch, as weights, and the marker of its end in its latest
            best = results.set_index("trial_id").loc[trial_id, "val_acc"]
            assert [c.metrics["val_acc"] for c in with_weights] == [best]
        else:
            assert not with_weights and len(saved) == 1, directory.name
    checkpoints, _ = used_bytes(asha_sweep.experiment)
    weights = (asha_sweep.experiment / "best_model" / "model.safetensors").stat().st_size
    assert checkpoints < 4 * weights * 1.1 + 12 * 16 * 1024  # 3 kept + best_model/, and 12 markers
