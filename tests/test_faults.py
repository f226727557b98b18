"""Faults injected into real sweeps: a killed driver, a killed trial worker, a multi-node cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from .conftest import write_spec

pytestmark = pytest.mark.ray


def session_processes(sid: int) -> list[int]:
    """Pids of the processes in session ``sid`` (field 6 of /proc/<pid>/stat)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:
            pids.append(int(stat.parent.name))
    return pids


def kill_session(sid: int) -> None:
    """SIGKILL every process of a session this test started (the driver and the Ray it started)."""
    for _ in range(20):
        pids = session_processes(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


def start_search(spec: Path, storage: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tune_app", "search", str(spec), "--storage", str(storage)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def result_lines(experiment: Path) -> dict[str, list[dict]]:
    """Trial directory name -> the result lines reported so far."""
    found = {}
    for path in experiment.glob("*/result.json"):
        lines = []
        for line in path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        found[path.parent.name] = lines
    return found


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (code {proc.returncode}) before {what}:\n{proc.stdout.read()}")
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def slow_spec(tmp_path, tiny_spec_data):
    """Trials long enough (several epochs) to be interrupted in the middle."""
    tiny_spec_data["name"] = "faults"
    tiny_spec_data["train"]["epochs"] = 4
    tiny_spec_data["data"]["image_size"] = 32
    tiny_spec_data["model"]["name"] = "timm/resnet10t"  # about 2 s an epoch here: time to step in
    tiny_spec_data["tune"].update(num_samples=4, search_alg="optuna", scheduler="fifo", max_concurrent=2)
    return write_spec(tmp_path / "faults.yaml", tiny_spec_data)


def test_a_killed_driver_is_finished_by_resume_with_each_trial_once(tmp_path, slow_spec):
    storage = tmp_path / "runs"
    experiment = storage / "faults"
    proc = start_search(slow_spec, storage)
    try:
        def one_finished_and_state_saved():
            done = [n for n, lines in result_lines(experiment).items() if lines and lines[-1]["epoch"] == 4]
            return done if done and list(experiment.glob("experiment_state-*.json")) else None

        finished = wait_for(one_finished_and_state_saved, 300, "a finished trial", proc)
    finally:
        kill_session(proc.pid)  # the driver and the local Ray it started
    proc.wait(timeout=30)
    before = result_lines(experiment)
    finished_results = {name: before[name] for name in finished}

    resumed = subprocess.run([sys.executable, "-m", "tune_app", "resume", str(experiment)],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    results = pd.read_csv(experiment / "results.csv")
    assert len(results) == 4 and results["trial_id"].is_unique
    assert set(results["status"]) == {"TERMINATED"} and (results["epochs"] == 4).all()
    after = result_lines(experiment)
    for name, lines in finished_results.items():  # finished trials were not trained again
        assert after[name][:4] == lines
        # At most a re-evaluation of the final weights (Ray had not taken in the last result).
        assert all(line["restored_from_epoch"] == 4 and line["val_acc"] == lines[-1]["val_acc"]
                   for line in after[name][4:])


def test_a_killed_trial_worker_restarts_from_its_last_checkpoint(tmp_path, slow_spec):
    storage = tmp_path / "runs"
    experiment = storage / "faults"
    proc = start_search(slow_spec, storage)
    try:
        def a_trial_past_epoch_one():
            for name, lines in result_lines(experiment).items():
                if len(lines) == 2 and not lines[-1].get("done"):  # mid-run, a checkpoint at epoch 2
                    return name, lines[-1]["pid"]
            return None

        name, pid = wait_for(a_trial_past_epoch_one, 300, "a trial in its third epoch", proc)
        os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=600)
    finally:
        kill_session(proc.pid)
    assert proc.returncode == 0, out
    lines = result_lines(experiment)[name]
    epochs = [line["epoch"] for line in lines]
    assert epochs[-1] == 4
    restored = [line for line in lines if line["restored_from_epoch"] > 0]
    assert restored, f"the trial started again from scratch: {epochs}"
    assert restored[0]["epoch"] == restored[0]["restored_from_epoch"] + 1 >= 2


def test_search_on_an_existing_two_node_cluster_uses_both_nodes(tmp_path, tiny_spec_data):
    from ray.cluster_utils import Cluster

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # keep the test cluster on loopback
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        tiny_spec_data["name"] = "cluster"
        tiny_spec_data["train"]["epochs"] = 2
        tiny_spec_data["tune"].update(num_samples=4, scheduler="fifo", max_concurrent=2)
        spec = write_spec(tmp_path / "cluster.yaml", tiny_spec_data)
        result = subprocess.run([sys.executable, "-m", "tune_app", "search", str(spec), "--storage",
                                 str(tmp_path / "runs"), "--address", cluster.address],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        history = pd.read_csv(tmp_path / "runs" / "cluster" / "history.csv")
        assert history["node_id"].nunique() == 2, history["node_id"].value_counts()
    finally:
        cluster.shutdown()
