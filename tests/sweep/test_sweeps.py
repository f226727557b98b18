"""Real Ray Tune sweeps for every search algorithm and every trial scheduler (one shared local Ray)."""

from __future__ import annotations

import copy
import json
import time

import pandas as pd
import pytest
import yaml

from tune_app.errors import SpecError
from tune_app.experiment.location import Location
from tune_app.report import load_history, write_reports
from tune_app.report.results import read_trials
from tune_app.spec import validate_spec
from tune_app.sweep.runner import run_sweep
from tune_app.sweep.strategies import SEARCH_ALGS, TRIAL_SCHEDULERS
from tune_app.training.engine import build_data_for

from ..conftest import TINY_SPEC

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for the module (run_sweep leaves a running Ray to its owner)."""
    import ray

    from tune_app.sweep.cluster import _loopback_only

    _loopback_only()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def digits16():
    spec = validate_spec(copy.deepcopy(TINY_SPEC))
    return build_data_for(spec.train_config())


def sweep(tmp_path, digits16, name, **changes):
    """Run the tiny spec with ``changes`` (section -> dict of values) and return (spec, results, history)."""
    data = copy.deepcopy(TINY_SPEC)
    data["name"] = name
    data["tune"]["storage"] = str(tmp_path)
    for section, values in changes.items():
        if isinstance(values, dict) and isinstance(data.get(section), dict) and section != "search":
            data[section].update(values)
        else:
            data[section] = values
    spec = validate_spec(data)
    location = Location.create(str(tmp_path), name)
    experiment_dir = location.local
    experiment_dir.mkdir()
    (experiment_dir / "spec.yaml").write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    lines: list[str] = []
    run_sweep(spec, location, data=digits16, echo=lines.append)
    results, _ = write_reports(experiment_dir, best_config=spec.fixed_at)
    return spec, results, load_history(experiment_dir), lines


FINITE = {"lr": {"choice": [0.003, 0.01]}, "loss": {"choice": ["ce", {"name": "focal", "gamma": 2.0}]}}


@pytest.mark.parametrize("alg", sorted(set(SEARCH_ALGS) - {"tpe"}))
def test_every_search_algorithm_runs_a_real_sweep(alg, tmp_path, digits16, ray_local):
    changes = {"tune": {"search_alg": alg, "scheduler": "fifo", "num_samples": 3}, "train": {"epochs": 1}}
    if alg == "grid":
        changes["search"] = FINITE
    _spec, results, history, lines = sweep(tmp_path, digits16, f"alg-{alg}", **changes)
    expected = 4 if alg == "grid" else 3
    assert len(results) == expected and set(results["status"]) == {"TERMINATED"}, results
    assert results["val_acc"].notna().all()
    assert len(history) == expected  # one epoch each
    trial_lines = [line for line in lines if line.startswith("trial ")]
    assert sum(" done " in line for line in trial_lines) == expected
    # Each trial's line counts the trials ended so far; the last one says all of them.
    assert [f"({n}/{expected})" in line for n, line in enumerate(trial_lines, 1)] == [True] * expected
    if alg == "grid":
        assert set(zip(results["lr"], results["loss"])) == {(0.003, "ce"), (0.003, "focal"), (0.01, "ce"),
                                                              (0.01, "focal")}


# Two good trials first, then two that cannot learn (lr 1e-6): an early-stopping scheduler
# must stop one of those, whatever order the batches come in.
GOOD_THEN_HOPELESS = [{"lr": lr, "loss": "ce", "scheduler": "cosine"} for lr in (1e-2, 5e-3, 1e-6, 2e-6)]


@pytest.mark.parametrize("scheduler", sorted(set(TRIAL_SCHEDULERS) - {"pbt"}))  # pbt: its own test below
def test_every_trial_scheduler_runs_a_real_sweep(scheduler, tmp_path, digits16, ray_local):
    tune = {"scheduler": scheduler, "num_samples": 4, "points_to_evaluate": GOOD_THEN_HOPELESS}
    if scheduler == "hyperband":
        tune["max_concurrent"] = None  # its brackets need every trial created up front
    search = {**TINY_SPEC["search"], "lr": {"loguniform": [1e-6, 1e-2]}}
    _spec, results, _history, _ = sweep(tmp_path, digits16, f"sched-{scheduler}", tune=tune, train={"epochs": 3},
                                      search=search)
    assert len(results) == 4 and set(results["status"]) == {"TERMINATED"}, results
    assert results["epochs"].between(1, 3).all()
    if scheduler == "fifo":
        assert (results["epochs"] == 3).all()
    else:  # the early-stopping schedulers stopped someone (4 trials, 3 rungs)
        assert (results["epochs"] < 3).any()


def test_pbt_restores_from_checkpoints_and_mutates_lr(tmp_path, digits16, ray_local):
    # Six epochs: five perturbations before the last one, which ends the trial without PBT
    # seeing it (with four epochs a sweep could end without any exploit).
    epochs = 6
    tune = {"scheduler": {"name": "pbt", "perturbation_interval": 1, "quantile_fraction": 0.5},
            "search_alg": "random", "num_samples": 4}
    _spec, results, history, _ = sweep(tmp_path, digits16, "pbt", tune=tune, train={"epochs": epochs})
    assert len(results) == 4 and set(results["status"]) == {"TERMINATED"}, results
    assert (results["epochs"] == epochs).all()  # PBT stops nobody; it replaces weights and values
    restored = history[history["restored_from_epoch"] > 0]
    assert not restored.empty, "no trial continued from a checkpoint"
    # A restored trial's first epoch after the restore is the one after the checkpoint (or,
    # cloned from a trial that had finished, the last epoch, evaluated once).
    first = restored.groupby("trial_id")["epoch"].min()
    starts = restored.groupby("trial_id")["restored_from_epoch"].min()
    assert ((first == starts + 1) | ((first == starts) & (first == epochs))).all()
    # Exploited trials continue with a perturbed lr: the lr column moves within a trial.
    moved = history.groupby("trial_id")["lr"].nunique()
    assert (moved > 1).any()


def test_pbt_with_more_trials_than_slots_ends_every_trial_at_its_budget(tmp_path, digits16, ray_local):
    # A perturbation falls on the last epoch (interval 1) and trials wait for slots: PBT used to
    # pause a finished trial there and resume it from its last checkpoint, which reported the
    # last epoch again, forever. The time budget only keeps a regression from hanging the tests.
    budget_s = 240
    tune = {"scheduler": {"name": "pbt", "perturbation_interval": 1, "quantile_fraction": 0.5},
            "search_alg": "random", "num_samples": 6, "time_budget_s": budget_s}
    started = time.monotonic()
    _spec, results, _, lines = sweep(tmp_path, digits16, "pbt-slots", tune=tune, train={"epochs": 3})
    assert time.monotonic() - started < budget_s, "the sweep ran into its time budget: a trial never ended"
    assert len(results) == 6 and set(results["status"]) == {"TERMINATED"}, results
    assert (results["epochs"] == 3).all()
    assert sum(" done " in line and "after 3 ep" in line for line in lines) == 6, lines
    # Each trial reported its last epoch once: the trial ended there, nothing resumed it.
    for trial in read_trials(tmp_path / "pbt-slots"):
        reported = [json.loads(line) for line in (trial.directory / "result.json").read_text().splitlines() if line]
        assert sum(r.get("epoch") == 3 for r in reported) == 1, (trial.trial_id, [r.get("epoch") for r in reported])


def test_slow_saves_of_the_experiment_state_keep_to_their_share_of_the_time(tmp_path, digits16, ray_local,
                                                                           monkeypatch):
    """Ray on its own saves the state after each of the 8 checkpoints (keep_checkpoints 1), however long a save
    takes; each writes every trial's state, so thousands of trials made it slow (benchmarks/many_trials.py)."""
    from ray.tune.execution.tune_controller import TuneController

    from tune_app.sweep.runner import SAVE_SHARE

    delay, saves = 0.5, []  # a save as slow as at ~600 trials
    save = TuneController.save_to_dir

    def slow_save(self):
        saves.append(time.monotonic())
        time.sleep(delay)
        save(self)

    monkeypatch.setattr(TuneController, "save_to_dir", slow_save)
    started = time.monotonic()
    _, results, history, _ = sweep(tmp_path, digits16, "saves", train={"epochs": 8},
                                   tune={"search_alg": "random", "scheduler": "fifo", "num_samples": 1})
    took = time.monotonic() - started
    assert list(results["status"]) == ["TERMINATED"] and list(history["epoch"]) == list(range(1, 9))
    # The first save, one each SAVE_SHARE x its duration at most, the final one.
    assert 2 <= len(saves) <= 2 + took // (SAVE_SHARE * delay), (len(saves), took)


def test_seeded_random_search_is_reproducible(tmp_path, digits16, ray_local):
    tune = {"search_alg": "random", "scheduler": "fifo", "num_samples": 3, "seed": 7}
    _, first, _, _ = sweep(tmp_path, digits16, "seed-a", tune=tune, train={"epochs": 1})
    _, second, _, _ = sweep(tmp_path, digits16, "seed-b", tune=tune, train={"epochs": 1})
    columns = ["lr", "loss", "loss.alpha", "loss.gamma", "scheduler", "scheduler.step_size"]
    pd.testing.assert_frame_equal(first[columns], second[columns])


def test_points_to_evaluate_run_first(tmp_path, digits16, ray_local):
    point = {"lr": 0.005, "loss": {"name": "focal", "alpha": 0.5, "gamma": 1.0}, "scheduler": {"name": "cosine"}}
    tune = {"search_alg": "optuna", "scheduler": "fifo", "num_samples": 2, "points_to_evaluate": [point]}
    _, results, _, _ = sweep(tmp_path, digits16, "points", tune=tune, train={"epochs": 1})
    first = results.iloc[0]
    assert (first["lr"], first["loss"], first["loss.alpha"], first["loss.gamma"], first["scheduler"]) == (
        0.005, "focal", 0.5, 1.0, "cosine")


def test_a_request_no_node_can_meet_fails_before_any_trial(tmp_path, digits16, ray_local):
    with pytest.raises(SpecError, match="no node of the cluster has that much"):
        sweep(tmp_path, digits16, "gpu", tune={"resources": {"cpu": 1, "gpu": 1}})
    assert not list((tmp_path / "gpu").glob("train_trial_*"))


def test_gpu_auto_runs_on_the_cpu_when_the_cluster_has_no_gpu(tmp_path, digits16, ray_local):
    _, results, _, _ = sweep(tmp_path, digits16, "auto", tune={"resources": {"cpu": 1, "gpu": "auto"},
                                                                "num_samples": 1}, train={"epochs": 1})
    assert list(results["status"]) == ["TERMINATED"]
