"""Parameter importance: Optuna's fANOVA on a study rebuilt from the results."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tests.report.synthetic import known
from tests.report.test_results import make_experiment
from tune_app.report import load_results, parameter_importance, read_parameters

NAMES = ["lr", "freeze_depth", "loss", "loss.gamma", "scheduler", "scheduler.step_size"]


@pytest.fixture
def exp(tmp_path: Path) -> Path:
    return known(tmp_path / "known")


def importance_of(exp: Path):
    results = load_results(exp)
    return parameter_importance(results, read_parameters(exp, results, NAMES), "val_acc", "max")


def test_importances_of_the_parameters_in_every_trial_sum_to_1(exp):
    found = importance_of(exp)
    assert found.note is None and found.trials == 7
    assert set(found.importances) == {"lr", "freeze_depth", "loss", "scheduler"}
    assert sum(found.importances.values()) == pytest.approx(1.0)
    assert all(v >= 0 for v in found.importances.values())
    assert list(found.importances.values()) == sorted(found.importances.values(), reverse=True)


def test_conditional_parameters_are_named_as_left_out(exp):
    assert importance_of(exp).left_out == {"loss.gamma": "conditional: absent from 3 of 7 trials",
                                           "scheduler.step_size": "conditional: absent from 4 of 7 trials"}


def test_importance_is_optunas_fanova_seeded_and_repeatable(exp):
    # The same study built by hand from the known table, with Optuna's own distributions.
    d = optuna.distributions
    distributions = {"lr": d.FloatDistribution(1e-4, 0.1, log=True), "freeze_depth": d.IntDistribution(0, 4),
                     "loss": d.CategoricalDistribution(["ce", "focal"]),
                     "scheduler": d.CategoricalDistribution(["cosine", "step"])}
    table = [(1e-3, 0, "ce", "cosine", 0.90), (1e-2, 1, "ce", "step", 0.70), (3e-3, 0, "focal", "cosine", 0.95),
             (1e-4, 2, "focal", "step", 0.60), (5e-4, 1, "focal", "cosine", 0.85), (2e-3, 2, "ce", "step", 0.80),
             (2e-2, 0, "focal", "cosine", 0.75)]
    study = optuna.create_study(direction="maximize")
    for lr, depth, loss, scheduler, value in table:
        study.add_trial(optuna.trial.create_trial(
            value=value, params={"lr": lr, "freeze_depth": depth, "loss": loss, "scheduler": scheduler},
            distributions=distributions))
    expected = optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    found = importance_of(exp).importances
    assert found == pytest.approx({k: float(v) for k, v in expected.items()})
    assert importance_of(exp).importances == found


def test_without_parameters_json_distributions_are_inferred(tmp_path):
    exp = known(tmp_path / "k", parameters=False)
    found = importance_of(exp)
    assert set(found.importances) == {"lr", "freeze_depth", "loss", "scheduler"}
    assert sum(found.importances.values()) == pytest.approx(1.0)
    assert set(found.left_out) == {"loss.gamma", "scheduler.step_size"}


def test_too_few_trials_say_so_instead_of_failing(tmp_path):
    exp = make_experiment(tmp_path / "tiny")  # 4 trials reported the metric and did not fail
    results = load_results(exp)
    found = parameter_importance(results, read_parameters(exp, results, ["lr", "loss"]), "val_acc", "max")
    assert found.importances == {} and found.trials == 4
    assert found.note == "too few trials reported `val_acc` to assess importance (4, at least 5 needed)"


def test_a_metric_that_never_varies_is_reported_not_raised(exp):
    results = load_results(exp)
    results["val_acc"] = results["val_acc"].where(results["val_acc"].isna(), 0.5)
    found = parameter_importance(results, read_parameters(exp, results, NAMES), "val_acc", "max")
    assert found.importances == {}
    assert found.note == "`val_acc` is the same in every trial: nothing to attribute"


def test_a_value_outside_the_declared_choices_widens_the_distribution(exp):
    results = load_results(exp)
    results.loc[results["trial_id"] == "t1", "loss"] = "dice"  # not in parameters.json's choices
    found = parameter_importance(results, read_parameters(exp, results, NAMES), "val_acc", "max")
    assert "loss" in found.importances


def test_nothing_in_every_trial(exp):
    results = load_results(exp)
    params = [p for p in read_parameters(exp, results, NAMES) if p.name in ("loss.gamma", "scheduler.step_size")]
    found = parameter_importance(results, params, "val_acc", "max")
    assert found.importances == {} and found.note == "no parameter is present in every trial"
    assert set(found.left_out) == {"loss.gamma", "scheduler.step_size"}


def test_beyond_max_trials_importance_runs_on_a_seeded_sample_and_says_so(tmp_path, monkeypatch):
    from tests.report.synthetic import SWEEP_PARAMETERS, sweep
    from tune_app.report import analyze, importance
    from tune_app.report.markdown import render_report

    exp = sweep(tmp_path / "sweep", n=60, epochs=4)
    results = load_results(exp)
    params = read_parameters(exp, results, list(SWEEP_PARAMETERS))
    scored = int((results["status"] != "ERROR").sum())
    full = parameter_importance(results, params, "val_acc", "max")
    monkeypatch.setattr(importance, "MAX_TRIALS", 30)
    sampled = parameter_importance(results, params, "val_acc", "max")
    assert (full.trials, full.sampled_from) == (scored, None)
    assert (sampled.trials, sampled.sampled_from) == (30, scored)
    assert sampled.importances == parameter_importance(results, params, "val_acc", "max").importances  # seeded
    assert sampled.importances != full.importances
    assert f"from the 30 trials of a random sample (seed 0) of the {scored} trials" in render_report(analyze(exp))
