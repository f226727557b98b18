"""Per-value comparisons, two-way tables, rank correlations and best ranges on the `known` experiment.

Every expected number follows from the table in ``synthetic.known``'s docstring; spreads are
checked against ``statistics`` and rank correlations against ``scipy.stats.spearmanr``.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import spearmanr

from tests.report.synthetic import known
from tests.report.test_results import values
from tune_app.report import analyze, compare_values, load_results, numeric_effects, read_parameters, two_way
from tune_app.report.parameters import infer_parameters
from tune_app.report.tables import VALUE_COLUMNS, stopped_early

SCORED = {  # trial -> (lr, freeze_depth, val_acc) for the trials that reported val_acc and did not fail
    "t1": (1e-3, 0, 0.90), "t2": (1e-2, 1, 0.70), "t3": (3e-3, 0, 0.95), "t4": (1e-4, 2, 0.60),
    "t5": (5e-4, 1, 0.85), "t7": (2e-3, 2, 0.80), "t8": (2e-2, 0, 0.75)}


@pytest.fixture
def exp(tmp_path: Path) -> Path:
    return known(tmp_path / "known")


def row(table, value) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in table.loc[value].items()}


# ------------------------------------------------------------ per value
def test_compare_values_for_loss_counts_stats_and_order(exp):
    table = compare_values(load_results(exp), "loss", "val_acc", "max", budget=4)
    assert list(table.columns) == VALUE_COLUMNS
    assert list(table.index) == ["focal", "ce"] and table.index.name == "loss"
    focal = [0.95, 0.60, 0.85, 0.75]  # t3 t4 t5 t8
    assert row(table, "focal") == {
        "trials": 4, "best": 0.95, "mean": pytest.approx(0.7875), "std": pytest.approx(statistics.stdev(focal)),
        "median": pytest.approx(0.80), "mean_epochs": pytest.approx(2.75), "stopped_early": 2, "failed": 0}
    # t9 (PENDING, nothing reported) is not counted; t6 (ERROR) only under failed.
    assert row(table, "ce") == {
        "trials": 3, "best": 0.90, "mean": pytest.approx(0.80), "std": pytest.approx(0.10),
        "median": pytest.approx(0.80), "mean_epochs": pytest.approx(10 / 3), "stopped_early": 1, "failed": 1}


def test_compare_values_for_a_scheduler_family(exp):
    table = compare_values(load_results(exp), "scheduler", "val_acc", "max", budget=4)
    assert list(table.index) == ["cosine", "step"]
    assert row(table, "cosine") == {
        "trials": 4, "best": 0.95, "mean": pytest.approx(0.8625),
        "std": pytest.approx(statistics.stdev([0.90, 0.95, 0.85, 0.75])), "median": pytest.approx(0.875),
        "mean_epochs": pytest.approx(3.5), "stopped_early": 1, "failed": 1}
    assert row(table, "step") == {
        "trials": 3, "best": 0.80, "mean": pytest.approx(0.70), "std": pytest.approx(0.10),
        "median": pytest.approx(0.70), "mean_epochs": pytest.approx(7 / 3), "stopped_early": 2, "failed": 0}


def test_compare_values_of_a_conditional_parameter_leave_out_trials_without_it(exp):
    table = compare_values(load_results(exp), "loss.gamma", "val_acc", "max", budget=4)
    assert list(table.index) == [2.0, 1.0]
    assert values(table["trials"]) == [2, 2]
    assert values(table["mean"]) == [pytest.approx(0.90), pytest.approx(0.675)]
    assert values(table["std"]) == [pytest.approx(statistics.stdev([0.95, 0.85])),
                                    pytest.approx(statistics.stdev([0.60, 0.75]))]
    assert values(table["stopped_early"]) == [0, 2]


def test_compare_values_of_a_small_int_range_and_a_single_trial(exp):
    results = load_results(exp)
    depth = compare_values(results, "freeze_depth", "val_acc", "max", budget=4)
    assert list(depth.index) == [0, 1, 2]
    assert values(depth["trials"]) == [3, 2, 2]
    assert values(depth["best"]) == [0.95, 0.85, 0.80]
    assert values(depth["failed"]) == [1, 0, 0]
    step = compare_values(results, "scheduler.step_size", "val_acc", "max", budget=4)
    assert list(step.index) == [3, 2, 1]
    assert values(step["std"]) == [None, None, None]  # one trial each: no spread
    assert values(step["median"]) == [0.80, 0.70, 0.60]


def test_compare_values_sort_lowest_first_for_mode_min(exp):
    results = load_results(exp, metric="val_loss", mode="min")
    table = compare_values(results, "loss", "val_loss", "min", budget=4)
    assert list(table.index) == ["focal", "ce"]
    assert values(table["best"]) == [pytest.approx(0.05), pytest.approx(0.10)]


def test_a_value_tried_only_by_failed_trials_comes_last_with_empty_stats(exp):
    results = load_results(exp)
    results.loc[results["trial_id"] == "t6", "loss"] = "dice"
    table = compare_values(results, "loss", "val_acc", "max", budget=4)
    assert list(table.index) == ["focal", "ce", "dice"]
    assert row(table, "dice") == {"trials": 0, "best": None, "mean": None, "std": None, "median": None,
                                  "mean_epochs": None, "stopped_early": 0, "failed": 1}


def test_a_boolean_choice_stays_apart_from_the_number_1(tmp_path):
    results = load_results(known(tmp_path / "k"))
    results["flag"] = pd.Series([True, 1, True, 1, 1, True, True, True, True], dtype=object)
    table = compare_values(results, "flag", "val_acc", "max", budget=4)
    assert [(type(v), v) for v in table.index] == [(bool, True), (int, 1)]
    assert values(table["trials"]) == [4, 3]  # True: t1 t3 t7 t8; 1: t2 t4 t5


def test_stopped_early_means_terminated_below_the_budget(exp):
    results = load_results(exp)
    assert list(results.loc[stopped_early(results, 4), "trial_id"]) == ["t2", "t4", "t8"]
    assert not stopped_early(results, None).any()


# -------------------------------------------------------------- two-way
def test_two_way_means_and_counts_per_pair(exp):
    means, counts = two_way(load_results(exp), "loss", "scheduler", "val_acc", "max")
    assert list(means.index) == ["focal", "ce"] and list(means.columns) == ["cosine", "step"]
    assert means.loc["focal", "cosine"] == pytest.approx((0.95 + 0.85 + 0.75) / 3)
    assert means.loc["focal", "step"] == pytest.approx(0.60)
    assert means.loc["ce", "cosine"] == pytest.approx(0.90)
    assert means.loc["ce", "step"] == pytest.approx(0.75)
    assert counts.to_dict() == {"cosine": {"focal": 3, "ce": 1}, "step": {"focal": 1, "ce": 2}}


def test_two_way_leaves_an_empty_cell_nan_with_count_0(exp):
    results = load_results(exp)
    results = results[results["trial_id"] != "t4"]  # the only focal + step trial
    means, counts = two_way(results, "loss", "scheduler", "val_acc", "max")
    assert math.isnan(means.loc["focal", "step"]) and counts.loc["focal", "step"] == 0


# ------------------------------------------------------ numeric effects
def test_spearman_matches_scipy_and_a_hand_count(exp):
    results = load_results(exp)
    effects = numeric_effects(results, read_parameters(exp, results, ["lr", "freeze_depth"]), "val_acc", "max")
    lr, depth, acc = zip(*SCORED.values())
    # lr ranks 3 6 5 1 2 4 7, val_acc ranks 6 2 7 1 5 4 3: sum d^2 = 54, rho = 1 - 6 * 54 / (7 * 48) = 1/28
    assert effects.loc[0, "spearman"] == pytest.approx(1 / 28)
    assert effects.loc[0, "spearman"] == pytest.approx(spearmanr(lr, acc).statistic)
    assert effects.loc[1, "spearman"] == pytest.approx(spearmanr(depth, acc).statistic)  # ties: average ranks
    assert values(effects["better"]) == ["higher", "lower"]
    assert values(effects["trials"]) == [7, 7]


def test_best_range_is_spanned_by_the_top_quarter_measured_in_log_space(exp):
    results = load_results(exp)
    params = read_parameters(exp, results, ["lr", "freeze_depth", "loss.gamma", "scheduler.step_size"])
    effects = numeric_effects(results, params, "val_acc", "max").set_index("parameter")
    # 7 trials -> top ceil(7/4) = 2: t3 (lr 3e-3) and t1 (lr 1e-3), share log(3) / log(0.1 / 1e-4)
    assert (effects.loc["lr", "top_trials"], effects.loc["lr", "best_low"], effects.loc["lr", "best_high"]) == (
        2, 1e-3, 3e-3)
    assert effects.loc["lr", "range_share"] == pytest.approx(math.log(3) / math.log(1000))
    assert effects.loc["lr", "scale"] == "log"
    assert (effects.loc["freeze_depth", "best_low"], effects.loc["freeze_depth", "best_high"]) == (0, 0)
    assert effects.loc["freeze_depth", "range_share"] == 0
    # conditional: 4 focal trials -> top 1 (t3, gamma 2); 3 step trials -> t7 (step_size 3), rho = 1
    assert (effects.loc["loss.gamma", "trials"], effects.loc["loss.gamma", "best_low"]) == (4, 2.0)
    assert effects.loc["scheduler.step_size", "spearman"] == pytest.approx(1.0)
    assert effects.loc["scheduler.step_size", "best_high"] == 3


def test_numeric_effects_skip_text_choices_and_say_lower_is_better_for_mode_min(exp):
    results = load_results(exp, metric="val_loss", mode="min")
    params = read_parameters(exp, results, ["lr", "loss", "scheduler"])
    effects = numeric_effects(results, params, "val_loss", "min")
    assert values(effects["parameter"]) == ["lr"]
    assert effects.loc[0, "spearman"] == pytest.approx(-1 / 28)  # val_loss = 1 - val_acc
    assert effects.loc[0, "better"] == "higher"  # a negative correlation with a loss: higher lr wins


def test_spearman_needs_three_trials(exp):
    results = load_results(exp).head(2)
    effects = numeric_effects(results, read_parameters(exp, results, ["lr"]), "val_acc", "max")
    assert math.isnan(effects.loc[0, "spearman"]) and effects.loc[0, "better"] == ""


# ------------------------------------------------------------ parameters
def test_parameters_come_from_parameters_json(exp):
    results = load_results(exp)
    params = {p.name: p for p in read_parameters(exp, results, ["lr", "freeze_depth", "loss.gamma", "scheduler"])}
    assert (params["lr"].kind, params["lr"].low, params["lr"].high, params["lr"].log) == ("float", 1e-4, 0.1, True)
    assert params["freeze_depth"].kind == "int" and params["freeze_depth"].discrete
    assert params["loss.gamma"].choices == (1.0, 2.0) and params["loss.gamma"].condition == {"loss": "focal"}
    assert params["loss.gamma"].numeric and not params["scheduler"].numeric
    assert not any(p.inferred for p in params.values())


def test_without_parameters_json_kinds_are_inferred_from_the_values(tmp_path):
    exp = known(tmp_path / "k", parameters=False)
    results = load_results(exp)
    names = ["lr", "freeze_depth", "loss", "loss.gamma", "scheduler", "scheduler.step_size"]
    params = {p.name: p for p in read_parameters(exp, results, names)}
    assert all(p.inferred for p in params.values())
    assert (params["lr"].kind, params["lr"].log, params["lr"].low, params["lr"].high) == ("float", True, 1e-4, 0.05)
    assert (params["freeze_depth"].kind, params["freeze_depth"].choices) == ("categorical", (0, 1, 2))  # repeats
    assert (params["loss"].kind, params["loss"].choices) == ("categorical", ("ce", "focal"))
    assert params["loss.gamma"].choices == (1.0, 2.0)
    assert (params["scheduler.step_size"].kind, params["scheduler.step_size"].discrete) == ("int", True)


def test_inference_keeps_unrepeated_floats_continuous():
    frame = pd.DataFrame({"x": [0.1, 0.2, 0.35, 0.5], "y": [1.5, 3.0, 7.25, 9.0]})
    x, y = infer_parameters(frame, ["x", "y"])
    assert (x.kind, x.log, y.kind, y.log) == ("float", False, "float", False)
    assert not x.discrete


def test_analysis_tables_per_categorical_parameter_and_colouring(exp):
    a = analyze(exp, importance=False)
    assert list(a.comparisons) == ["freeze_depth", "loss", "loss.gamma", "scheduler", "scheduler.step_size"]
    assert a.colour_by == "loss"  # the first categorical one; freeze_depth is an int range
    assert analyze(exp, by=("scheduler",), importance=False).colour_by == "scheduler"
    assert (a.overview.stopped_early, a.overview.budget, a.overview.budget_inferred) == (3, 4, False)
    assert (a.overview.trial_epochs, a.overview.trial_seconds, a.overview.timed_trials) == (22, 220.0, 8)
    assert a.overview.wall_seconds == 110.0


def test_by_must_name_a_parameter_with_a_table(exp):
    with pytest.raises(ValueError, match="--by optimizer: not a searched parameter.*searched: lr, freeze_depth"):
        analyze(exp, by=("optimizer",))
    with pytest.raises(ValueError, match="--by lr: takes too many values.*choose among freeze_depth, loss"):
        analyze(exp, by=("lr",))


def test_the_comparison_shown_first_is_a_choice_of_named_strategies_over_a_choice_of_numbers():
    from tune_app.report.analysis import _default_colour_by
    from tune_app.report.parameters import Parameter

    weight_decay = Parameter("weight_decay", "categorical", choices=(0.0, 0.05))
    loss = Parameter("loss", "categorical", choices=("ce", "focal"))
    lr = Parameter("lr", "float", low=1e-4, high=1e-2, log=True)
    assert _default_colour_by([lr, weight_decay, loss], ["weight_decay", "loss"]) == "loss"
    assert _default_colour_by([lr, weight_decay], ["weight_decay"]) == "weight_decay"
    assert _default_colour_by([lr], []) is None
