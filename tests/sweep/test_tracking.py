"""Per-trial tracking, one sweep of three trials two at a time: a real `mlflow server` on 127.0.0.1 gets one
run per trial, TensorBoard's reader reads each trial's events, W&B keeps one offline run per trial."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import struct
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tune_app.cli import main

from ..conftest import TINY_SPEC, free_port, write_spec
from ..processes import kill_session, wait_for


def test_a_logger_whose_package_is_missing_names_its_extra(tiny_spec_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # Python's own way to make a package unimportable
    tiny_spec_data["tune"]["loggers"] = ["mlflow"]
    spec = write_spec(tmp_path / "tiny.yaml", tiny_spec_data)
    assert main(["search", str(spec), "--dry-run"]) == 2
    assert "tune.loggers: mlflow needs the mlflow package, which is not installed: pip install 'tune-app[mlflow]'" in (
        capsys.readouterr().err)


@contextlib.contextmanager
def mlflow_server(tmp_path: Path):
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


@dataclass
class Tracked:
    experiment: Path
    results: pd.DataFrame  # by trial id
    history: pd.DataFrame
    mlflow_uri: str


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One sweep with every tracker, three trials two at a time, against a real MLflow server; W&B offline."""
    root = tmp_path_factory.mktemp("tracked")
    data = copy.deepcopy(TINY_SPEC)
    data["name"] = "tracked"
    data["tune"].update(num_samples=3, max_concurrent=2, scheduler="fifo", loggers=["mlflow", "tensorboard", "wandb"])
    spec = write_spec(root / "tracked.yaml", data)
    with mlflow_server(root) as uri:
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
        result = subprocess.run([sys.executable, "-m", "tune_app", "search", str(spec), "--storage",
                                 str(root / "runs")], capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        experiment = root / "runs" / "tracked"
        yield Tracked(experiment, pd.read_csv(experiment / "results.csv").set_index("trial_id"),
                      pd.read_csv(experiment / "history.csv"), uri)


def epochs_of(tracked: Tracked, trial_id: str, metric: str = "val_acc") -> list[tuple[int, float]]:
    epochs = tracked.history[tracked.history["trial_id"] == trial_id].sort_values("epoch")
    return [(int(e), v) for e, v in zip(epochs["epoch"], epochs[metric])]


@pytest.mark.ray
def test_mlflow_gets_one_run_per_trial_with_each_epochs_metrics(tracked):
    from mlflow.tracking import MlflowClient

    assert not (tracked.experiment / "mlflow.db").exists()  # MLFLOW_TRACKING_URI wins over the local store
    client = MlflowClient(tracking_uri=tracked.mlflow_uri)
    found = client.get_experiment_by_name("tracked")
    runs = client.search_runs([found.experiment_id])
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["trial_id"] for r in trials) == sorted(tracked.results.index)  # one run per trial
    assert parent.info.status == "FINISHED" and {r.info.status for r in trials} == {"FINISHED"}
    for run in trials:
        trial_id = run.data.tags["trial_id"]
        row = tracked.results.loc[trial_id]
        assert run.data.tags["experiment"] == "tracked" and run.data.tags["trial_scheduler"] == "fifo"
        assert run.data.tags["seed"] == "0" and run.info.run_name == trial_id
        assert float(run.data.params["lr"]) == pytest.approx(row["lr"]) and run.data.params["loss"] == row["loss"]
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_acc"))
        assert [step for step, _ in history] == [1, 2]
        assert history == [(e, pytest.approx(v)) for e, v in epochs_of(tracked, trial_id)]


@pytest.mark.ray
def test_tensorboards_reader_reads_each_trials_event_file(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for trial_id in tracked.results.index:
        [trial_dir] = tracked.experiment.glob(f"*_{trial_id}_*")
        events = EventAccumulator(str(trial_dir))
        events.Reload()
        scalars = events.Scalars("ray/tune/val_acc")
        assert [(e.step, e.value) for e in scalars] == [(s, pytest.approx(v, abs=1e-6))
                                                       for s, v in epochs_of(tracked, trial_id)]


@pytest.mark.ray
def test_wandb_keeps_one_offline_run_per_trial(tracked):
    from wandb.proto import wandb_internal_pb2

    for trial_id in tracked.results.index:
        [run_file] = tracked.experiment.glob(f"wandb/offline-run-*-{trial_id}/run-{trial_id}.wandb")
        records = [wandb_internal_pb2.Record.FromString(r) for r in read_wandb_records(run_file)]
        [run] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
        assert run.run_id == trial_id and run.run_group == "tracked" and "trial_scheduler:fifo" in run.tags
        config = dict(items(run.config.update))
        assert config["lr"] == pytest.approx(tracked.results.loc[trial_id, "lr"])
        logged = [dict(items(r.history.item)) for r in records if r.WhichOneof("record_type") == "history"]
        assert not [r for r in records if r.WhichOneof("record_type") == "output_raw"]  # not the driver's console
        assert [(h["epoch"], pytest.approx(h["val_acc"])) for h in logged] == epochs_of(tracked, trial_id)


def items(entries) -> list[tuple[str, object]]:
    """W&B's key/value records as (key, value); a key may come split into nested parts."""
    return [(item.key or "/".join(item.nested_key), json.loads(item.value_json)) for item in entries]


def read_wandb_records(path: Path) -> list[bytes]:
    """The records of a W&B transaction log (LevelDB's log format behind a 7-byte W&B header)."""
    data, records, pending, at = path.read_bytes(), [], b"", 7
    assert data[:4] == b":W&B"
    while at + 7 <= len(data):
        block_left = 32768 - (at % 32768)
        if block_left < 7:  # a block's tail too short for a header is padding
            at += block_left
            continue
        length, kind = struct.unpack("<HB", data[at + 4:at + 7])
        payload, at = data[at + 7:at + 7 + length], at + 7 + length
        if kind == 0 and length == 0:
            break
        pending += payload
        if kind in (1, 4):  # FULL, LAST
            records.append(pending)
            pending = b""
    return records


def test_the_tensorboard_logger_keeps_rays_event_writer_when_its_automatic_loggers_are_off(tiny_spec_data):
    from ray.tune.logger import TBXLoggerCallback

    from tune_app.experiment.location import Location
    from tune_app.spec import validate_spec
    from tune_app.sweep.tracking import tracking_callbacks

    tiny_spec_data["tune"]["loggers"] = ["tensorboard"]
    [callback] = tracking_callbacks(validate_spec(tiny_spec_data), Location("/tmp", "tiny"))
    assert isinstance(callback, TBXLoggerCallback)


def test_without_a_tracking_uri_mlflow_writes_a_store_in_the_experiment(monkeypatch, tmp_path):
    from tune_app.experiment.location import Location
    from tune_app.sweep.tracking import mlflow_uri

    location = Location(str(tmp_path), "quickstart")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert mlflow_uri(location) == f"sqlite:///{tmp_path / 'quickstart' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert mlflow_uri(location) == "http://127.0.0.1:5000"
