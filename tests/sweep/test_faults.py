"""Faults injected into real sweeps: a killed driver, a killed trial worker, failing trials, a full disk (signals
to the job: tests/test_supervisor.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import optuna
import pandas as pd
import pytest
import yaml

from ..conftest import result_lines, write_spec
from ..processes import kill_session, resume_to_the_end, start_search, wait_for

pytestmark = pytest.mark.ray


@pytest.fixture
def slow_spec(tmp_path, tiny_spec_data):
    """Trials long enough (several epochs) to be interrupted in the middle."""
    tiny_spec_data["name"] = "faults"
    tiny_spec_data["train"]["epochs"] = 4
    tiny_spec_data["data"]["image_size"] = 32
    tiny_spec_data["model"]["name"] = "timm/resnet10t"  # about 2 s an epoch here: time to step in
    # keep_best_trials 1: the checkpoint budget deletes what ended trials saved; resume must not need it.
    tiny_spec_data["tune"].update(num_samples=4, search_alg="optuna", scheduler="fifo", max_concurrent=2,
                                  keep_best_trials=1)
    return write_spec(tmp_path / "faults.yaml", tiny_spec_data)


def test_a_killed_driver_is_finished_by_resume_with_each_trial_once_after_the_experiment_moved(tmp_path, slow_spec):
    """SIGKILL to every process of the job (the supervisor's own reports are tests/test_supervisor.py's)."""
    storage = tmp_path / "runs"
    experiment = storage / "faults"
    data = yaml.safe_load(slow_spec.read_text())
    data["train"]["epochs"], data["tune"]["num_samples"] = 3, 3  # one finished, one running, one to come
    proc = start_search(write_spec(slow_spec, data), storage)
    try:
        def one_finished_and_state_saved():
            done = [n for n, lines in result_lines(experiment).items() if lines and lines[-1]["epoch"] == 3]
            return done if done and list(experiment.glob("experiment_state-*.json")) else None

        finished = wait_for(one_finished_and_state_saved, 300, "a finished trial", proc)
    finally:
        kill_session(proc.pid)  # the driver and the local Ray it started
    proc.wait(timeout=30)
    before = result_lines(experiment)
    finished_results = {name: before[name] for name in finished}
    # and the experiment moves (copied off a cluster, renamed): Ray's files and the study name the old path
    moved = tmp_path / "moved" / "faults"
    shutil.move(experiment.parent, moved.parent)

    after = resume_to_the_end(moved, trials=3, epochs=3)
    for name, lines in finished_results.items():  # finished trials were not trained again
        assert after[name][:3] == lines
        # At most a re-evaluation of the final weights (Ray had not taken in the last result).
        assert all(line["restored_from_epoch"] == 3 and line["val_acc"] == lines[-1]["val_acc"]
                   for line in after[name][4:])
    assert not storage.exists()  # nothing was written where the experiment had been
    study = optuna.load_study(study_name="faults", storage=f"sqlite:///{moved / 'optuna.db'}")
    assert sorted(t.state.name for t in study.trials if t.user_attrs.get("ray_trial_id")) == ["COMPLETE"] * 3


def test_a_killed_trial_worker_restarts_from_its_last_checkpoint(tmp_path, slow_spec):
    storage = tmp_path / "runs"
    experiment = storage / "faults"
    data = yaml.safe_load(slow_spec.read_text())
    data["tune"]["num_samples"] = 2  # one trial to kill, one beside it
    proc = start_search(write_spec(slow_spec, data), storage)
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
    # results.csv counts the restart; the report says where the trial went on from
    results = pd.read_csv(experiment / "results.csv").set_index("trial_id")
    trial = lines[-1]["trial_id"]
    assert results.loc[trial, "status"] == "TERMINATED" and results.loc[trial, "restarts"] == 1
    assert (results.drop(index=trial)["restarts"] == 0).all()
    section = (experiment / "report.md").read_text().split("## Restarted trials")[1]
    assert f"| {trial} | TERMINATED | 1 | epoch {restored[0]['restored_from_epoch']} |" in section


def test_failing_trials_end_with_their_reason_and_the_sweep_goes_on(tmp_path, tiny_spec_data):
    """One sweep, four trials: one healthy, one diverging, one out of memory, one raising."""
    tiny_spec_data["name"] = "failures"
    tiny_spec_data["train"].update(epochs=2, optimizer="sgd")
    tiny_spec_data["search"] = {
        "lr": {"choice": [0.003, 1.0e30]},
        "loss": {"choice": ["ce", "focal"]},
        "scheduler": {"choice": ["cosine", {"name": "onecycle", "total_steps": 2}]},
    }
    healthy = {"lr": 0.003, "loss": "ce", "scheduler": "cosine"}
    tiny_spec_data["tune"].update(search_alg="random", scheduler="fifo", num_samples=4, points_to_evaluate=[
        healthy,
        {**healthy, "lr": 1.0e30},                                      # loss becomes NaN in epoch 1
        {**healthy, "loss": "focal"},                                   # out of memory in epoch 2 (injected)
        {**healthy, "scheduler": {"name": "onecycle", "total_steps": 2}},  # raises while building the run
    ])
    spec = write_spec(tmp_path / "failures.yaml", tiny_spec_data)
    env = {**os.environ, "TUNE_APP_INJECT_FAULT": json.dumps({"fault": "oom", "epoch": 2,
                                                                "if": {"loss.name": "focal"}})}
    result = subprocess.run([sys.executable, "-m", "tune_app", "search", str(spec), "--storage", str(tmp_path / "runs")],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout + result.stderr  # one trial succeeded

    experiment = tmp_path / "runs" / "failures"
    results = pd.read_csv(experiment / "results.csv").set_index("loss")
    by_case = {
        "healthy": results[(results["lr"] == 0.003) & (results["scheduler"] == "cosine")].loc[["ce"]].iloc[0],
        "diverged": results[results["lr"] == 1.0e30].iloc[0],
        "oom": results.loc[["focal"]].iloc[0],
        "error": results[results["scheduler"] == "onecycle"].iloc[0],
    }
    assert (by_case["healthy"]["status"], by_case["healthy"]["epochs"]) == ("TERMINATED", 2)
    assert (by_case["diverged"]["status"], by_case["diverged"]["epochs"]) == ("DIVERGED", 1)  # stopped at once
    assert by_case["diverged"]["error"].startswith("diverged: training loss is nan in epoch 1")
    assert (by_case["oom"]["status"], by_case["oom"]["epochs"]) == ("OOM", 2)
    # The fault strikes at any size: retried down to tune.oom_min_batch (8) first.
    assert "out of memory at batch_size 64 with amp off, even in micro-batches of 8" in by_case["oom"]["error"]
    assert by_case["error"]["status"] == "ERROR"
    assert "onecycle: total_steps=2 is fewer than the" in by_case["error"]["error"]
    report = (experiment / "report.md").read_text()
    failed = report.split("## Failed trials", 1)[1]
    for case in ("diverged", "oom", "error"):
        assert by_case[case]["trial_id"] in failed
    assert "diverged: training loss is nan" in failed and "out of memory at batch_size 64" in failed
    assert "total_steps=2 is fewer" in failed
    leaderboard = report.split("## Leaderboard", 1)[1].split("##", 1)[0]
    assert leaderboard.count("| TERMINATED |") == 1 and "DIVERGED" not in leaderboard


def test_a_trial_out_of_memory_goes_on_in_smaller_micro_batches_with_the_same_training(tmp_path, tiny_spec_data):
    """Out of memory above 16 images (injected) for focal trials: 64 -> 32 -> 16 images a pass, 4 accumulated."""
    tiny_spec_data["name"] = "microbatch"
    tiny_spec_data["train"]["epochs"] = 1
    tiny_spec_data["search"] = {"loss": {"choice": ["ce", "focal"]}}
    tiny_spec_data["tune"].update(search_alg="grid", scheduler="fifo", max_concurrent=2)
    spec = write_spec(tmp_path / "microbatch.yaml", tiny_spec_data)
    env = {**os.environ, "TUNE_APP_INJECT_FAULT": json.dumps({"fault": "oom", "above_batch": 16,
                                                                "if": {"loss.name": "focal"}})}
    result = subprocess.run([sys.executable, "-m", "tune_app", "search", str(spec), "--storage", str(tmp_path / "runs")],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    experiment = tmp_path / "runs" / "microbatch"
    results = pd.read_csv(experiment / "results.csv").set_index("loss")
    assert set(results["status"]) == {"TERMINATED"} and (results["epochs"] == 1).all()
    history = pd.read_csv(experiment / "history.csv").set_index("trial_id")
    focal, ce = results.loc["focal", "trial_id"], results.loc["ce", "trial_id"]
    assert (history.loc[focal, "micro_batch"], history.loc[focal, "accumulation"]) == (16, 4)
    assert (history.loc[ce, "micro_batch"], history.loc[ce, "accumulation"]) == (64, 1)
    section = (experiment / "report.md").read_text().split("## Trials that ran out of memory and went on in "
                                                            "micro-batches", 1)[1].split("##", 1)[0]
    assert f"| {focal} | 16 | 4 | 1 |" in section and ce not in section


def _unshare_available() -> bool:
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare_available(), reason="needs unshare -rm (user and mount namespaces) for a private tmpfs")
@pytest.mark.parametrize(("mount_options", "fragment"), [
    ("ro,size=4m", "cannot write the experiment directory"),
    ("size=4m", "only 4 MB free at"),  # 4 MB cannot hold 4 trials' checkpoints
])
def test_a_read_only_or_full_storage_is_a_clear_error_before_any_training(tmp_path, tiny_spec_data, mount_options,
                                                                          fragment):
    storage = tmp_path / "small"
    storage.mkdir()
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec_data)
    # A private tmpfs in a private mount namespace: nothing outside this command sees it.
    script = (f"mount -t tmpfs -o {mount_options} tmpfs {storage} && "
              f"exec {sys.executable} -m tune_app search {spec} --storage {storage}")
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"tune.storage: {fragment}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "trials of" not in result.stdout  # stopped before the sweep began


@pytest.mark.skipif(not _unshare_available(), reason="needs unshare -rm (user and mount namespaces) for a private tmpfs")
def test_a_disk_that_fills_mid_sweep_ends_the_trial_that_cannot_checkpoint_and_keeps_the_rest(tmp_path,
                                                                                                tiny_spec_data):
    storage, copy = tmp_path / "small", tmp_path / "copy"
    storage.mkdir()
    tiny_spec_data["name"] = "fills"
    tiny_spec_data["search"] = {"loss": {"choice": ["ce", "focal"]}}
    tiny_spec_data["tune"].update(search_alg="grid", scheduler="fifo", max_concurrent=1, max_failures=0,
                                  keep_best_trials=1)
    spec = write_spec(tmp_path / "fills.yaml", tiny_spec_data)
    experiment = storage / "fills"
    # A private tmpfs with room for the sweep; once the first trial has finished (and its checkpoints were
    # settled: the second trial started), another writer leaves it 3 MB, less than a checkpoint (4.5 MB).
    # The experiment is copied out before the namespace (and its tmpfs) goes away.
    script = f"""
mount -t tmpfs -o size=80m tmpfs {storage} || exit 99
( until [ "$(cat {experiment}/*/result.json 2>/dev/null | wc -l)" -ge 2 ] &&
        [ "$(ls -d {experiment}/train_trial_* 2>/dev/null | wc -l)" -ge 2 ]; do sleep 0.1; done
  dd if=/dev/zero of={storage}/filler bs=1M count=$(( $(df -m --output=avail {storage} | tail -1) - 3 )) 2>/dev/null
  echo "filled: $(df -m --output=avail {storage} | tail -1) MB left" ) &
{sys.executable} -m tune_app search {spec} --storage {storage}
code=$?
cp -r {experiment} {copy}
exit $code
"""
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out  # one trial finished
    left = re.search(r"filled: *(\d+) MB left", out)
    assert left and int(left.group(1)) < 4, out  # less than a checkpoint
    results = pd.read_csv(copy / "results.csv").set_index("loss")
    assert (results.loc["ce", "status"], results.loc["ce", "epochs"]) == ("TERMINATED", 2)
    assert results.loc["focal", "status"] == "ERROR"
    failed_epoch = re.search(r"no space left on device for the checkpoint of epoch (\d)", results.loc["focal", "error"])
    assert failed_epoch, results.loc["focal", "error"]  # epoch 1 or 2: when the other writer came
    failed = (copy / "report.md").read_text().split("## Failed trials", 1)[1]
    assert results.loc["focal", "trial_id"] in failed and "no space left on device" in failed
    history = pd.read_csv(copy / "history.csv")
    assert list(history[history["trial_id"] == results.loc["ce", "trial_id"]]["epoch"]) == [1, 2]
    # What the failed upload had written (Ray numbers checkpoints from 0) is gone, so the reports above had room.
    focal_dir = next(copy.glob(f"*{results.loc['focal', 'trial_id']}*"))
    assert not (focal_dir / f"checkpoint_{int(failed_epoch.group(1)) - 1:06d}").exists()
    assert (f"disk full: 1 trial(s) could not save a checkpoint ({results.loc['focal', 'trial_id']}). "
            f"Free space at {experiment}") in out
    assert "MB are free now), then continue them with: tune-app resume" in out and "--retry-errored" in out
    assert "tune_app/cli.py" not in out  # Ray logs the trial's traceback; the driver itself never failed
