"""The sweep's Optuna study in <experiment>/optuna.db: read back with Optuna, and served by optuna-dashboard."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import optuna
import pandas as pd
import pytest

from tune_app.cli import main
from tune_app.experiment.study import EPOCHS, RAY_TRIAL_ID, VALUE, study_storage

from ..conftest import free_port, write_spec
from ..processes import kill_session, wait_for

pytestmark = pytest.mark.ray


def test_every_trial_is_in_the_study_with_the_value_results_csv_reports(study_sweep):
    results = pd.read_csv(study_sweep.experiment / "results.csv").set_index("trial_id")
    study = optuna.load_study(study_name="study", storage=study_storage(None, study_sweep.experiment))
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    trials = {t.user_attrs[RAY_TRIAL_ID]: t for t in study.trials}
    assert set(trials) == set(results.index) and len(study.trials) == 5
    for trial_id, row in results.iterrows():
        trial = trials[trial_id]
        assert trial.params["lr"] == pytest.approx(row["lr"]) and trial.params["loss"] == row["loss"]
        assert trial.user_attrs[EPOCHS] == row["epochs"]
        assert trial.user_attrs[VALUE] == pytest.approx(row["val_acc"])  # the best over its epochs
        if row["epochs"] == 2:
            assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == pytest.approx(row["val_acc"])
        else:  # stopped by ASHA
            assert trial.state == optuna.trial.TrialState.PRUNED
        assert sorted(trial.intermediate_values) == list(range(1, row["epochs"] + 1))
    stopped = trials[results.index[(results["lr"] - 1e-5).abs() < 1e-12][0]]
    assert stopped.state == optuna.trial.TrialState.PRUNED


def test_optuna_dashboard_serves_the_study(study_sweep):
    port = free_port()
    command = Path(sys.executable).with_name("optuna-dashboard")  # the console script of this environment
    dashboard = subprocess.Popen([str(command), study_storage(None, study_sweep.experiment),
                                  "--host", "127.0.0.1", "--port", str(port), "--quiet"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def get(path: str):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            return None

    try:
        studies = wait_for(lambda: get("/api/studies"), 60, "optuna-dashboard to answer", dashboard)
        [summary] = [s for s in studies["study_summaries"] if s["study_name"] == "study"]
        detail = get(f"/api/studies/{summary['study_id']}")
    finally:
        kill_session(dashboard.pid)
        dashboard.wait(timeout=30)
    results = pd.read_csv(study_sweep.experiment / "results.csv")
    assert len(detail["trials"]) == len(results)
    states = sorted(t["state"] for t in detail["trials"])
    assert "Pruned" in states and states.count("Complete") == (results["epochs"] == 2).sum()
    assert max(t["values"][0] for t in detail["trials"] if t["state"] == "Complete") == pytest.approx(
        results.loc[results["epochs"] == 2, "val_acc"].max())


def test_a_study_name_taken_in_a_shared_database_is_refused(tmp_path, tiny_spec_data, capsys):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="tiny", storage=url)
    tiny_spec_data["tune"]["study_storage"] = url
    spec = write_spec(tmp_path / "tiny.yaml", tiny_spec_data)
    assert main(["search", str(spec), "--storage", str(tmp_path / "runs")]) == 2
    assert "name: the study 'tiny' already exists in" in capsys.readouterr().err
