"""Warm start: earlier trials replayed through a changed space (unit), and a real search started from them."""

from __future__ import annotations

import copy
import subprocess
import sys

import optuna
import pandas as pd
import pytest

from tune_app.cli import main
from tune_app.experiment.study import RAY_TRIAL_ID, WARM_START_FROM, study_storage
from tune_app.experiment.warm_start import fit_to_space
from tune_app.spec.space import parse_space
from tune_app.training import KNOBS

from ..conftest import write_spec

SPACE = parse_space({"lr": {"loguniform": [1e-3, 1e-2]},
                     "loss": {"choice": ["ce", {"name": "focal", "gamma": {"choice": [1.0, 2.0]}}, "bce"]},
                     "scheduler": {"choice": ["cosine", {"name": "step", "step_size": {"int": [1, 3]}}]}}, KNOBS)


@pytest.mark.parametrize("flat, why", [
    ({"lr": 0.1, "loss": "ce", "scheduler": "cosine"}, "lr is outside the new range [0.001, 0.01]"),
    ({"lr": 0.005, "loss": "dice", "scheduler": "cosine"}, "loss = dice is no longer a choice"),
    ({"lr": 0.005, "loss": "focal", "loss.gamma": 3.0, "scheduler": "cosine"}, "loss.gamma = 3.0 is no longer a choice"),
    ({"lr": 0.005, "loss": "ce", "scheduler": "step", "scheduler.step_size": 5}, "scheduler.step_size is outside the new range [1, 3]"),
    ({"lr": 0.005, "loss": "ce", "scheduler": "cosine", "weight_decay": 0.1}, "weight_decay is no longer searched"),
    ({"lr": 0.005, "loss": "ce"}, "it has no value for the new parameter scheduler"),
], ids=["range", "removed-choice", "removed-nested-choice", "int-range", "parameter-gone", "parameter-added"])
def test_a_trial_that_does_not_fit_the_new_space_is_dropped_with_its_reason(flat, why):
    replay, reason = fit_to_space(SPACE, flat)
    assert replay is None and reason.startswith(why)


def test_a_trial_fits_a_space_with_added_choices_and_gets_the_new_distributions():
    replay, reason = fit_to_space(SPACE, {"lr": 0.005, "loss": "focal", "loss.gamma": 2.0, "scheduler": "step",
                                          "scheduler.step_size": 2})
    assert reason == "" and replay.params["scheduler.step_size"] == 2
    assert replay.distributions["loss"].choices == ("ce", "focal", "bce")  # bce is new: fine
    optuna.trial.create_trial(value=0.5, params=replay.params, distributions=replay.distributions)  # valid


@pytest.mark.parametrize("alg, scheduler, fragment", [
    ("grid", "fifo", "--warm-start: grid search runs every point of its grid"),
    ("random", "pbt", "--warm-start: pbt draws its population at random"),
])
def test_warm_start_refuses_a_search_that_cannot_use_earlier_trials(tmp_path, tiny_spec_data, alg, scheduler,
                                                                    fragment, capsys):
    if alg == "grid":
        tiny_spec_data["search"] = {"lr": {"choice": [0.003, 0.01]}}
    tiny_spec_data["tune"].update(search_alg=alg, scheduler=scheduler)
    spec = write_spec(tmp_path / "grid.yaml", tiny_spec_data)
    assert main(["search", str(spec), "--warm-start", str(tmp_path), "--dry-run"]) == 2
    assert fragment in capsys.readouterr().err


def test_warm_start_from_a_directory_that_is_no_experiment_exits_2(tiny_spec_file, tmp_path, capsys):
    assert main(["search", str(tiny_spec_file), "--warm-start", str(tmp_path), "--dry-run"]) == 2
    assert "is not a tune-app experiment directory" in capsys.readouterr().err


@pytest.mark.ray
def test_a_warm_started_search_gets_the_fitting_earlier_trials_first(study_sweep, tmp_path):
    earlier = pd.read_csv(study_sweep.experiment / "results.csv")
    data = copy.deepcopy(study_sweep.spec_data)
    data["name"] = "warm"
    data["train"]["epochs"] = 1
    data["search"]["lr"] = {"loguniform": [2.0e-3, 1.0e-2]}  # the lr 1e-5 trial (and any below 2e-3) no longer fits
    data["search"]["scheduler"] = {"choice": ["cosine", "onecycle"]}  # step removed, onecycle added
    data["tune"].update(num_samples=2, scheduler="fifo", points_to_evaluate=[])
    spec = write_spec(tmp_path / "warm.yaml", data)
    result = subprocess.run([sys.executable, "-m", "tune_app", "search", str(spec), "--storage", str(tmp_path / "runs"),
                             "--warm-start", str(study_sweep.experiment)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr

    fits = (earlier["lr"] >= 2e-3) & (earlier["scheduler"] == "cosine")
    out_of_range = earlier["lr"] < 2e-3
    removed = (earlier["scheduler"] == "step") & ~out_of_range
    assert out_of_range.sum() >= 1
    line = next(line for line in result.stdout.splitlines() if line.startswith("warm start:"))
    assert line.startswith(f"warm start: {fits.sum()} earlier trials from {study_sweep.experiment}; "
                           f"{(~fits).sum()} dropped (")
    assert f"{out_of_range.sum()} because lr is outside the new range [0.002, 0.01]" in line
    assert (f"{removed.sum()} because scheduler = step is no longer a choice" in line) == bool(removed.any())

    experiment = tmp_path / "runs" / "warm"
    results = pd.read_csv(experiment / "results.csv")
    assert len(results) == 2 and not set(results["trial_id"]) & set(earlier["trial_id"])  # only the new trials
    study = optuna.load_study(study_name="warm", storage=study_storage(None, experiment))
    warm = [t for t in study.trials if WARM_START_FROM in t.user_attrs]
    assert [t.number for t in warm] == list(range(fits.sum()))  # given before anything was proposed
    assert {t.user_attrs[RAY_TRIAL_ID] for t in warm} == set(earlier.loc[fits, "trial_id"])
    by_id = earlier.set_index("trial_id")
    for trial in warm:
        row = by_id.loc[trial.user_attrs[RAY_TRIAL_ID]]
        if row["epochs"] == 2:  # the earlier budget
            assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == pytest.approx(row["val_acc"])
        else:
            assert trial.state == optuna.trial.TrialState.PRUNED
    new = {t.user_attrs.get(RAY_TRIAL_ID) for t in study.trials if WARM_START_FROM not in t.user_attrs}
    assert new == set(results["trial_id"])
    assert f"warm-started from `{study_sweep.experiment}`: {fits.sum()} earlier trials" in (
        experiment / "report.md").read_text()
