"""Experiments on object storage for real: an S3-compatible server (moto's) on 127.0.0.1."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys

import pandas as pd
import pytest

from ..conftest import write_spec
from ..processes import kill_session, wait_for

BUCKET = "sweeps"


@pytest.fixture
def s3_env(tmp_path):
    """A moto S3 server on loopback with one bucket, and the standard AWS variables that reach it."""
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("moto.server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def listening():
            with socket.socket() as conn:
                return conn.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, 30, "the S3 server", server)
        env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "TUNE_APP_CACHE": str(tmp_path / "cache")}
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket=BUCKET)
        yield env, client
    finally:
        kill_session(server.pid)
        server.wait(timeout=30)


def keys(client, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def read(client, key: str) -> str:
    return client.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()


def reported_lines(client, prefix: str) -> set[tuple[str, int]]:
    """(trial id, epoch) of every result line in the bucket's result.json files."""
    found = set()
    for key in keys(client, prefix):
        if key.endswith("/result.json"):
            for line in read(client, key).splitlines():
                row = pd.read_json(io.StringIO(line), typ="series")
                found.add((row["trial_id"], int(row["epoch"])))
    return found


@pytest.mark.ray
def test_a_sweep_on_s3_is_interrupted_resumed_and_reported_from_the_bucket(tmp_path, tiny_spec_data, s3_env):
    env, client = s3_env
    tiny_spec_data["name"] = "ons3"
    tiny_spec_data["tune"].update(num_samples=3, scheduler="fifo", max_concurrent=2)
    spec = write_spec(tmp_path / "ons3.yaml", tiny_spec_data)
    uri, prefix = f"s3://{BUCKET}/tune/ons3", "tune/ons3/"
    proc = subprocess.Popen([sys.executable, "-m", "tune_app", "search", str(spec), "--storage", f"s3://{BUCKET}/tune"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    try:  # Ray uploads results every 10 s or more: interrupt once the first are in the bucket
        wait_for(lambda: reported_lines(client, prefix), 300, "results in the bucket", proc)
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        kill_session(proc.pid)
    assert proc.returncode == 143, out
    assert f"uploaded the driver's latest results and state to {uri}" in out
    stored = keys(client, prefix)
    for name in ("spec.yaml", "results.csv", "history.csv", "report.md", "best_config.yaml"):
        assert prefix + name in stored, name
    assert any(k.startswith(prefix + "experiment_state-") for k in stored)
    history = pd.read_csv(io.StringIO(read(client, prefix + "history.csv")), dtype={"trial_id": str})
    # What the driver had not uploaded yet went up with the reports: the bucket and its history agree.
    assert set(zip(history["trial_id"], history["epoch"])) == reported_lines(client, prefix)

    resumed = subprocess.run([sys.executable, "-m", "tune_app", "resume", uri], capture_output=True, text=True,
                             timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    results = pd.read_csv(io.StringIO(read(client, prefix + "results.csv")))
    assert len(results) == 3 and results["trial_id"].is_unique
    assert set(results["status"]) == {"TERMINATED"} and (results["epochs"] == 2).all()
    assert prefix + "best_model/model.safetensors" in keys(client, prefix)

    client.delete_object(Bucket=BUCKET, Key=prefix + "report.md")
    report = subprocess.run([sys.executable, "-m", "tune_app", "report", uri, "--format", "md"], capture_output=True,
                            text=True, timeout=300, env=env)
    assert report.returncode == 0, report.stdout + report.stderr
    assert "## Leaderboard" in read(client, prefix + "report.md")


def test_the_drivers_newer_copy_is_brought_into_a_local_experiment_without_checkpoints(tmp_path):
    from tune_app.experiment.location import Location

    staged = tmp_path / "driver_artifacts"
    (staged / "trial_a" / "checkpoint_000001").mkdir(parents=True)
    (staged / "trial_a" / "result.json").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    (staged / "trial_a" / "checkpoint_000001" / "state.pt").write_bytes(b"heavy")
    (staged / "experiment_state-1.json").write_text("{}")
    location = Location.create(str(tmp_path / "runs"), "exp")
    (location.local / "trial_a").mkdir(parents=True)
    (location.local / "trial_a" / "result.json").write_text('{"epoch": 1}\n')  # as Ray's last copy left it
    location.push_tree(staged)
    assert (location.local / "trial_a" / "result.json").read_text() == '{"epoch": 1}\n{"epoch": 2}\n'
    assert (location.local / "experiment_state-1.json").read_text() == "{}"
    assert not (location.local / "trial_a" / "checkpoint_000001").exists()  # checkpoints are in place already
