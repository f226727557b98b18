"""The disk bound of the checkpoint budget: its parts, and that it is not below what checkpoints really take."""

from __future__ import annotations

import io

import pytest
import torch

from tune_app.experiment.checkpoints import ended_state
from tune_app.spec import validate_spec
from tune_app.sweep.disk import ENDED_BYTES, disk_budget, max_classes, used_bytes
from tune_app.training import DataConfig, TrainConfig, TrainingRun


def spec_with(tiny_spec_data, **tune):
    tiny_spec_data["tune"].update(tune)
    return validate_spec(tiny_spec_data)


def test_running_trials_hold_best_latest_and_one_being_written(tiny_spec_data):
    budget = disk_budget(spec_with(tiny_spec_data, num_samples=12, max_concurrent=2, keep_best_trials=3))
    assert (budget.alive, budget.full_per_trial, budget.kept, budget.trials) == (2, 3, 3, 12)
    assert budget.checkpoints == 2 * 3 * budget.full_bytes + 4 * budget.weights_bytes + 12 * ENDED_BYTES


@pytest.mark.parametrize(("tune", "alive"), [
    ({"scheduler": "hyperband", "max_concurrent": None}, 12),  # paused trials keep their checkpoints
    ({"scheduler": {"name": "pbt", "perturbation_interval": 1}, "search_alg": "random"}, 12),
    ({"scheduler": "asha", "max_concurrent": None}, 1),  # this machine's slots: 1 here
    ({"scheduler": "asha", "max_concurrent": None, "address": "auto"}, 12),  # a cluster: unknown, so all
])
def test_trials_that_can_continue_at_once(tiny_spec_data, tune, alive):
    spec = spec_with(tiny_spec_data, num_samples=12, **tune)
    assert disk_budget(spec, slots=1).alive == alive


def test_pbt_keeps_at_least_four_best_per_trial(tiny_spec_data):
    spec = spec_with(tiny_spec_data, scheduler={"name": "pbt", "perturbation_interval": 1}, search_alg="random")
    assert disk_budget(spec).full_per_trial == 4 + 2


def test_no_checkpoints_no_budget(tiny_spec_data):
    budget = disk_budget(spec_with(tiny_spec_data, checkpoint_every=0))
    assert budget.checkpoints == 0 and "none" in budget.describe()


def test_the_sizes_are_not_below_real_checkpoints(tiny_spec_data):
    spec = validate_spec(tiny_spec_data)
    budget = disk_budget(spec)
    run = TrainingRun(TrainConfig(model=spec.model.name, epochs=1, device="cpu", data=DataConfig(image_size=16)))
    run.train_one_epoch(max_steps=1)
    full = _size(run.state_dict())
    weights = _size(ended_state(run.state_dict(), "finished", {"epoch": 1, "val_acc": 0.5}, 1))
    assert full <= budget.full_bytes <= 1.1 * full
    assert weights <= budget.weights_bytes <= 1.1 * weights


def test_the_class_count_of_a_folder_is_its_class_folders(tiny_spec_data, tmp_path):
    for name in ("cat", "dog", "owl", ".cache"):
        (tmp_path / name).mkdir()
    tiny_spec_data["data"] = {"dataset": "folder", "train_dir": str(tmp_path)}
    assert max_classes(validate_spec(tiny_spec_data)) == 3


def test_used_bytes_counts_checkpoints_apart(tmp_path):
    (tmp_path / "trial" / "checkpoint_000000").mkdir(parents=True)
    (tmp_path / "trial" / "checkpoint_000000" / "state.pt").write_bytes(b"\0" * 100_000)
    (tmp_path / "trial" / "result.json").write_bytes(b"\0" * 10_000)
    checkpoints, total = used_bytes(tmp_path)
    assert 100_000 <= checkpoints < 110_000 and 110_000 <= total < 125_000


def _size(state) -> int:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return len(buffer.getvalue())
