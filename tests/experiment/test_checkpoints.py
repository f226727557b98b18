"""Checkpoint directories and the forms the budget leaves them in: real files, real TrainingRun states."""

from __future__ import annotations

import math

import pytest
import torch

from tune_app.experiment.checkpoints import (
    ENDED,
    RESULT,
    TrialCheckpoints,
    load_state,
    restorable_state,
    settle,
    write_checkpoint,
)
from tune_app.training import DataConfig, TrainConfig, TrainingRun


@pytest.fixture(scope="module")
def state():
    run = TrainingRun(TrainConfig(model="timm/test_resnet", epochs=1, device="cpu", data=DataConfig(image_size=16)))
    run.train_one_epoch(max_steps=1)
    return run.state_dict()


def trial_dir(tmp_path, state, scores, metric="val_acc"):
    """A trial directory with one checkpoint per epoch, ``scores`` the metric of each."""
    for epoch, score in enumerate(scores, 1):
        write_checkpoint(tmp_path / f"checkpoint_{epoch - 1:06d}", {**state, "epoch": epoch},
                         {"epoch": epoch, metric: score})
    return TrialCheckpoints(tmp_path)


def test_the_best_is_the_best_finite_score_and_the_later_of_equals(tmp_path, state):
    store = trial_dir(tmp_path, state, [0.5, 0.9, math.nan, 0.9, 0.7])
    assert store.best("val_acc", "max").epoch == 4
    assert store.latest().epoch == 5
    assert store.best("val_acc", "min").epoch == 1


def test_a_nan_failure_result_is_never_the_best(tmp_path, state):
    store = trial_dir(tmp_path, state, [math.nan, math.nan])
    assert store.best("val_acc", "max") is None
    store = trial_dir(tmp_path / "loss", state, [1.0, math.nan], metric="val_loss")
    assert store.best("val_loss", "min").epoch == 1


def test_a_kept_trial_keeps_its_best_weights_and_a_marker_in_its_latest(tmp_path, state):
    store = trial_dir(tmp_path, state, [0.5, 0.9, 0.7])
    result = {"epoch": 3, "val_acc": 0.7}
    settle(store, keep=True, ended="finished", result=result, metric="val_acc", mode="max")
    best, latest = store.list()
    assert (best.epoch, best.weights, latest.epoch, latest.weights) == (2, True, 3, False)
    kept = store.load(best)
    assert set(kept) == {"epoch", "config", "model", ENDED, RESULT} and kept["epoch"] == 2
    assert all(torch.equal(kept["model"][k], state["model"][k]) for k in state["model"])
    marker = store.load(latest)
    assert marker == {"epoch": 3, ENDED: "finished", RESULT: result}
    assert (tmp_path / "checkpoint_000001" / "state.pt").stat().st_size < 0.5 * len(_saved(state))
    assert (tmp_path / "checkpoint_000002" / "state.pt").stat().st_size < 4096


def test_a_trial_not_kept_leaves_only_the_marker(tmp_path, state):
    store = trial_dir(tmp_path, state, [0.5, 0.9, 0.7])
    settle(store, keep=False, ended="errored", result={"epoch": 3}, metric="val_acc", mode="max")
    [latest] = store.list()
    assert latest.epoch == 3 and load_state(f"{latest.path}/state.pt")[ENDED] == "errored"


def test_a_trial_whose_best_is_its_latest_keeps_one_checkpoint_and_loses_it_when_displaced(tmp_path, state):
    store = trial_dir(tmp_path, state, [0.5, 0.9])
    settle(store, keep=True, ended="finished", result={"epoch": 2, "val_acc": 0.9}, metric="val_acc", mode="max")
    [only] = store.list()
    assert (only.epoch, only.weights) == (2, True) and "model" in store.load(only)
    settle(store, keep=False, ended="finished", result={"epoch": 2, "val_acc": 0.9}, metric="val_acc", mode="max")
    [only] = store.list()
    assert not only.weights and "model" not in store.load(only)


def test_settling_again_rewrites_nothing(tmp_path, state):
    store = trial_dir(tmp_path, state, [0.5, 0.9, 0.7])
    settle(store, keep=True, ended="finished", result={"epoch": 3}, metric="val_acc", mode="max")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    settle(store, keep=True, ended="finished", result={"epoch": 3}, metric="val_acc", mode="max")
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == before


def _saved(state) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def test_a_restore_from_a_checkpoint_ray_already_deleted_takes_the_newest_left(tmp_path):
    # The experiment state a killed driver left names checkpoint 2, which Ray deleted when 3 came.
    for index, epoch in ((0, 1), (2, 3)):
        write_checkpoint(tmp_path / f"checkpoint_{index:06d}", {"epoch": epoch, "model": {}}, {"epoch": epoch})
    assert restorable_state(str(tmp_path / "checkpoint_000001"))["epoch"] == 3
    assert restorable_state(str(tmp_path / "checkpoint_000000"))["epoch"] == 1  # there: itself
    assert restorable_state(str(tmp_path / "empty" / "checkpoint_000004")) is None  # nothing left: afresh


def test_a_checkpoint_cut_short_is_passed_over_for_the_one_before(tmp_path):
    # The state names checkpoint 3, deleted since; the driver and its workers were killed while Ray
    # copied checkpoint 2 into the trial's directory.
    for index in range(3):
        write_checkpoint(tmp_path / f"checkpoint_{index:06d}", {"epoch": index + 1, "model": {}}, {"epoch": index + 1})
    _cut_short(tmp_path / "checkpoint_000002" / "state.pt")
    assert restorable_state(str(tmp_path / "checkpoint_000003"))["epoch"] == 2
    for index in range(2):  # none can be read: that error, not a fresh start that would hide it
        _cut_short(tmp_path / f"checkpoint_{index:06d}" / "state.pt")
    with pytest.raises(RuntimeError, match="zip archive"):
        restorable_state(str(tmp_path / "checkpoint_000003"))


def _cut_short(path) -> None:
    path.write_bytes(path.read_bytes()[:100])
