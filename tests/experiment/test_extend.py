"""tune-app extend: more trials in a finished experiment, the same study, the reports over all trials."""

from __future__ import annotations

import shutil
import subprocess
import sys

import optuna
import pandas as pd
import pytest
import yaml

from tune_app.cli import main
from tune_app.experiment.study import RAY_TRIAL_ID, study_storage

pytestmark = pytest.mark.ray


@pytest.fixture
def finished(study_sweep, tmp_path):
    """A copy of the shared sweep: extending changes it."""
    copy = tmp_path / "runs" / "study"
    shutil.copytree(study_sweep.experiment, copy)
    return copy


def test_extend_adds_trials_to_the_same_study_and_reports_all(finished):
    before = pd.read_csv(finished / "results.csv")
    result = subprocess.run([sys.executable, "-m", "tune_app", "extend", str(finished), "--trials", "2"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"extending {finished} by 2 trials (search optuna, its study holds 5 trials)" in result.stdout

    after = pd.read_csv(finished / "results.csv")
    assert len(after) == 7 and after["trial_id"].is_unique
    pd.testing.assert_frame_equal(after.head(5).drop(columns="time_total_s"), before.drop(columns="time_total_s"))
    new = after.tail(2)
    assert set(new["status"]) == {"TERMINATED"}
    history = pd.read_csv(finished / "history.csv")
    assert set(history["trial_id"]) == set(after["trial_id"])

    study = optuna.load_study(study_name="study", storage=study_storage(None, finished))
    assert len(study.trials) == 7  # the same study, continued
    assert [t.user_attrs[RAY_TRIAL_ID] for t in study.trials[5:]] == list(new["trial_id"])
    report = (finished / "report.md").read_text()
    assert "- trials: 7 (" in report and "extended 1 time with tune-app extend: +2 trials" in report


def test_extend_refuses_a_grid_search_and_bad_counts(finished, capsys):
    assert main(["extend", str(finished), "--trials", "0"]) == 2
    assert "--trials must be >= 1" in capsys.readouterr().err
    spec = yaml.safe_load((finished / "spec.yaml").read_text())
    spec["search"] = {"lr": {"choice": [0.003, 0.01]}}
    spec["tune"].update(search_alg="grid", points_to_evaluate=[])
    (finished / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert main(["extend", str(finished), "--trials", "2"]) == 2
    assert "tune.search_alg: grid search runs every point of its grid" in capsys.readouterr().err
