"""The supervisor keeps a sweep's reports whatever ends its Ray driver: real sweeps, real signals, a busy machine."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tune_app.experiment.location import Location
from tune_app.supervisor import needs_supervisor
from tune_app.sweep.lifecycle import reports_from_disk

from .conftest import result_lines, write_spec
from .processes import command_line, kill_session, resume_to_the_end, session_processes, start_search, wait_for
from .report.synthetic import Trial, write_experiment


def test_only_the_commands_that_run_a_ray_driver_are_supervised(monkeypatch):
    monkeypatch.delenv("TUNE_APP_SUPERVISOR", raising=False)
    for command in ("search", "resume", "extend", "compare", "confirm"):
        assert needs_supervisor([command, "x"])
    for argv in (["validate", "x"], ["train", "x"], ["report", "d"], ["search", "x", "--dry-run"],
                 ["search", "--help"], []):
        assert not needs_supervisor(argv)
    monkeypatch.setenv("TUNE_APP_SUPERVISOR", "0")  # one process, as tune_app.cli.main from Python
    assert not needs_supervisor(["search", "x"])
    monkeypatch.setenv("TUNE_APP_SUPERVISOR", "1")
    monkeypatch.setenv("TUNE_APP_SUPERVISOR_FD", "5")  # the driver it started
    assert not needs_supervisor(["search", "x"])


# ------------------------------------------------------------ real sweeps
TRIALS, EPOCHS = 4, 3


@pytest.fixture
def spec(tmp_path, tiny_spec_data) -> Path:
    tiny_spec_data["name"] = "supervised"
    tiny_spec_data["train"]["epochs"] = EPOCHS
    tiny_spec_data["tune"].update(num_samples=TRIALS, scheduler="fifo", max_concurrent=2)
    return write_spec(tmp_path / "supervised.yaml", tiny_spec_data)


def driver_of(proc: subprocess.Popen) -> int:
    """The pid of the Ray driver the supervisor ``proc`` started."""
    return wait_for(lambda: next((p for p in session_processes(proc.pid)
                                  if p != proc.pid and " -m tune_app search" in command_line(p)), None),
                    60, "the driver", proc)


def running(experiment: Path, epochs: int, proc: subprocess.Popen) -> None:
    """Until ``epochs`` epochs are reported and Ray saved its state once."""
    def reported():
        count = sum(len(lines) for lines in result_lines(experiment).values())
        return count >= epochs and list(experiment.glob("experiment_state-*.json"))

    wait_for(reported, 300, f"{epochs} epochs reported", proc)


def ended(proc: subprocess.Popen) -> str:
    """The supervisor's output once it exits; then nothing of the job may still run."""
    try:
        out, _ = proc.communicate(timeout=180)
        wait_for(lambda: not session_processes(proc.pid), 30, "every process of the job to end")
    finally:
        kill_session(proc.pid)
    assert "Traceback" not in out, out
    return out


def assert_every_reported_epoch_in_the_reports(experiment: Path, since: float, extra_trials: int = 0) -> None:
    """The reports, written after the signal (``since``; the sweep rewrites them as it goes), hold every
    epoch the trials reported, and every trial Ray made (with 2 at a time, not all are made yet)."""
    for name in ("results.csv", "history.csv", "report.md", "best_config.yaml"):
        assert (experiment / name).stat().st_mtime >= since, name
    reported = {(line["trial_id"], line["epoch"]) for lines in result_lines(experiment).values() for line in lines}
    history = pd.read_csv(experiment / "history.csv", dtype={"trial_id": str})
    assert set(zip(history["trial_id"], history["epoch"])) == reported
    results = pd.read_csv(experiment / "results.csv", dtype={"trial_id": str})
    assert {trial for trial, _ in reported} <= set(results["trial_id"])
    started = len(list(experiment.glob("*/params.json")))
    assert started <= len(results) <= TRIALS + extra_trials  # started: the synthetic older trials too


@pytest.mark.ray
@pytest.mark.slow
def test_sigterm_to_each_process_of_the_job_raylet_and_gcs_first_on_a_busy_machine(tmp_path, spec, cpu_burner):
    """As SLURM's scancel does: every process of the job signalled, here one by one, Ray's raylet and GCS before
    the driver (Ray then ends the driver itself), the supervisor last."""
    experiment = tmp_path / "runs" / "supervised"
    proc = start_search(spec, tmp_path / "runs")
    try:
        driver = driver_of(proc)
        running(experiment, 3, proc)
        pids = session_processes(proc.pid)
        first = [p for p in pids if any(name in command_line(p) for name in ("/raylet", "/gcs_server"))]
        assert len(first) == 2, [command_line(p) for p in pids]
        rest = [p for p in pids if p not in first and p not in (driver, proc.pid)]
        signalled = time.time()
        for pid in [*first, *rest, driver, proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    finally:
        out = ended(proc)
    assert proc.returncode == 143, out
    assert f"finish the sweep with: tune-app resume {experiment}" in out
    assert_every_reported_epoch_in_the_reports(experiment, signalled)
    before = result_lines(experiment)

    after = resume_to_the_end(experiment, trials=TRIALS, epochs=EPOCHS)
    for name, lines in before.items():  # continued, not trained again from the start
        assert after[name][:len(lines)] == lines


@pytest.mark.ray
@pytest.mark.slow
def test_a_driver_killed_like_the_out_of_memory_killer_does_leaves_the_reports_and_exit_1(tmp_path, spec):
    experiment = tmp_path / "runs" / "supervised"
    proc = start_search(spec, tmp_path / "runs")
    try:
        driver = driver_of(proc)
        running(experiment, 2, proc)
        signalled = time.time()
        os.kill(driver, signal.SIGKILL)
    finally:
        out = ended(proc)
    assert proc.returncode == 1, out
    assert "the sweep's driver was killed by SIGKILL" in out
    assert f"finish the sweep with: tune-app resume {experiment}" in out
    assert_every_reported_epoch_in_the_reports(experiment, signalled)
    # (resume after a killed driver: tests/sweep/test_faults.py)


def synthetic_trials(n: int) -> list[Trial]:
    """Finished trials of the spec's space (lr), laid out as an earlier run of Ray wrote them."""
    return [Trial(f"old{i:05d}", {"lr": 1e-4 * (1 + i % 97)},
                  [{"train_loss": 1.0 / e, "val_loss": 1.1 / e, "val_acc": 0.5 + 0.1 * e + 1e-4 * i}
                   for e in range(1, EPOCHS + 1)], start=10.0 * i) for i in range(n)]


@pytest.mark.ray
@pytest.mark.slow
def test_sigterm_to_the_process_group_with_reports_that_take_seconds_keeps_them_all(tmp_path, spec):
    """As timeout and kill -- -PGID do: the tune-app process's group is the supervisor alone (the driver has
    its own), as for Kubernetes and docker stop (PID 1 only): forwarded to the driver. The experiment also
    holds 600 trials of an earlier run, so its reports take several seconds to write; nothing is left
    running."""
    experiment = tmp_path / "runs" / "supervised"
    proc = start_search(spec, tmp_path / "runs")
    try:
        running(experiment, 2, proc)
        write_experiment(experiment, synthetic_trials(600))  # an older experiment_state file and its trials
        signalled = time.time()  # at once: the sweep must still run when the signal comes
        os.killpg(proc.pid, signal.SIGTERM)
    finally:
        out = ended(proc)
    assert proc.returncode == 143, out
    assert "SIGTERM: stopping the sweep" in out and "copied the driver's latest results and state to" in out
    copy = tmp_path / "copy" / "supervised"  # how long its reports take to write, alone
    shutil.copytree(experiment, copy, ignore=shutil.ignore_patterns("checkpoint_*"))
    start = time.monotonic()
    reports_from_disk(Location(str(copy.parent), copy.name))
    alone = time.monotonic() - start
    assert alone > 2.0, alone  # several seconds here
    assert_every_reported_epoch_in_the_reports(experiment, signalled, extra_trials=600)
    assert "Parameter importance" in (experiment / "report.md").read_text()
    assert (experiment / "report.html").stat().st_mtime >= (experiment / "results.csv").stat().st_mtime


@pytest.mark.ray
@pytest.mark.slow
def test_a_second_signal_ends_the_job_at_once(tmp_path, spec):
    proc = start_search(spec, tmp_path / "runs")
    try:
        driver_of(proc)
        wait_for(lambda: (tmp_path / "runs" / "supervised" / "data.json").is_file(), 120, "the experiment", proc)
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(0.2)
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
    finally:
        out = ended(proc)
    assert proc.returncode == 143, out
    assert time.monotonic() - sent < 10
    assert "SIGTERM again: exiting at once" in out


@pytest.mark.ray
@pytest.mark.slow
def test_a_driver_whose_supervisor_is_killed_writes_its_own_reports(tmp_path, spec):
    """The driver gets SIGTERM when its supervisor dies (PR_SET_PDEATHSIG) and handles it as an unsupervised
    driver does (tune_app.cli.main from Python, TUNE_APP_SUPERVISOR=0)."""
    experiment = tmp_path / "runs" / "supervised"
    proc = start_search(spec, tmp_path / "runs")
    try:
        running(experiment, 2, proc)
        signalled = time.time()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        out = ended(proc)
    assert proc.returncode == -signal.SIGKILL
    assert "SIGTERM: writing the reports from what is on disk" in out
    assert f"interrupted; finish the sweep with: tune-app resume {experiment}" in out
    assert_every_reported_epoch_in_the_reports(experiment, signalled)
