"""The runner's changes to Ray's checkpoint bookkeeping, on Ray's own classes (no Ray instance needed; the
saves of the experiment state in a real sweep: tests/sweep/test_sweeps.py)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs
import pytest
from ray.train import Checkpoint, CheckpointConfig
from ray.train._internal.checkpoint_manager import _CheckpointManager
from ray.train._internal.session import _TrainingResult

from tune_app.sweep.runner import _snapshots_within_their_share


def _checkpoints(tmp_path: Path, epochs: int) -> list[_TrainingResult]:
    results = []
    for epoch in range(epochs):
        directory = tmp_path / f"checkpoint_{epoch:06d}"
        directory.mkdir()
        (directory / "state.pt").write_bytes(b"x")
        checkpoint = Checkpoint(str(directory), filesystem=pafs.LocalFileSystem())
        results.append(_TrainingResult(checkpoint=checkpoint, metrics={"val_acc": 0.1 * epoch}))
    return results


def test_deleting_a_checkpoint_that_is_already_gone_is_no_error(tmp_path):
    """A resumed state names the checkpoint a killed driver's manager had deleted: Ray deletes it again."""
    first, second, third = _checkpoints(tmp_path, 3)
    config = CheckpointConfig(num_to_keep=1, checkpoint_score_attribute="val_acc", checkpoint_score_order="max")
    with _snapshots_within_their_share():
        manager = _CheckpointManager(config)
        manager.register_checkpoint(first)
        manager.register_checkpoint(second)  # the better and the latest: first goes
        _remove(second)  # gone before Ray comes to delete it
        manager.register_checkpoint(third)  # the best and the latest: second goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_000002"]  # nothing left behind
    assert manager.latest_checkpoint_result is third

    (tmp_path / "outside").mkdir()
    first, second = _checkpoints(tmp_path / "outside", 2)
    outside = _CheckpointManager(config)
    outside.register_checkpoint(first)
    _remove(first)
    with pytest.raises(FileNotFoundError):  # Ray's own deletion fails on it
        outside.register_checkpoint(second)


def _remove(result: _TrainingResult) -> None:
    Path(result.checkpoint.path, "state.pt").unlink()
    Path(result.checkpoint.path).rmdir()
