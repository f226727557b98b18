"""Per-trial tracking: a real `mlflow server` on 127.0.0.1 receives one run per trial, several trials at once."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tune_app.cli import main

from .conftest import free_port, write_spec
from .processes import kill_session, wait_for


def test_a_logger_whose_package_is_missing_names_its_extra(tiny_spec_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # Python's own way to make a package unimportable
    tiny_spec_data["tune"]["loggers"] = ["mlflow"]
    spec = write_spec(tmp_path / "tiny.yaml", tiny_spec_data)
    assert main(["search", str(spec), "--dry-run"]) == 2
    assert "tune.loggers: mlflow needs the mlflow package, which is not installed: pip install 'tune-app[mlflow]'" in (
        capsys.readouterr().err)


@pytest.fixture
def mlflow_server(tmp_path):
    """A real MLflow tracking server on a free loopback port, stopped through its own session."""
    port = free_port()
    command = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen([str(command), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                               "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                               "--default-artifact-root", str(tmp_path / "artifacts")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, 120, "the MLflow server to answer", server)
        yield uri
    finally:
        kill_session(server.pid)
        server.wait(timeout=30)


@pytest.mark.ray
def test_mlflow_gets_one_run_per_trial_with_each_epochs_metrics(mlflow_server, tiny_spec_data, tmp_path):
    from mlflow.tracking import MlflowClient

    tiny_spec_data["name"] = "tracked"
    tiny_spec_data["tune"].update(num_samples=3, max_concurrent=2, scheduler="fifo", loggers=["mlflow"])
    spec = write_spec(tmp_path / "tracked.yaml", tiny_spec_data)
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server}
    result = subprocess.run([sys.executable, "-m", "tune_app", "search", str(spec), "--storage", str(tmp_path / "runs")],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    experiment = tmp_path / "runs" / "tracked"
    results = pd.read_csv(experiment / "results.csv").set_index("trial_id")
    history = pd.read_csv(experiment / "history.csv")
    assert not (experiment / "mlflow.db").exists()  # MLFLOW_TRACKING_URI wins over the local store

    client = MlflowClient(tracking_uri=mlflow_server)
    found = client.get_experiment_by_name("tracked")
    runs = client.search_runs([found.experiment_id])
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["trial_id"] for r in trials) == sorted(results.index)  # one run per trial
    assert parent.info.status == "FINISHED" and {r.info.status for r in trials} == {"FINISHED"}
    for run in trials:
        trial_id = run.data.tags["trial_id"]
        row = results.loc[trial_id]
        assert run.data.tags["experiment"] == "tracked" and run.data.tags["trial_scheduler"] == "fifo"
        assert run.data.tags["seed"] == "0" and run.info.run_name == trial_id
        assert float(run.data.params["lr"]) == pytest.approx(row["lr"]) and run.data.params["loss"] == row["loss"]
        steps = client.get_metric_history(run.info.run_id, "val_acc")
        epochs = history[history["trial_id"] == trial_id].sort_values("epoch")
        assert sorted((m.step, m.value) for m in steps) == [
            (int(e), pytest.approx(v)) for e, v in zip(epochs["epoch"], epochs["val_acc"])]
        assert [m.step for m in sorted(steps, key=lambda m: m.step)] == [1, 2]
