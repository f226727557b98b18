"""The parameter tree: parsing, sampling, conditional structure, grid, defaults, nesting."""

from __future__ import annotations

import math

import pytest

from tune_app.spec.space import SpaceError, parse_space
from tune_app.training import KNOBS

FULL = {
    "lr": {"loguniform": [1.0e-4, 1.0e-1]},
    "weight_decay": {"choice": [0.0, 1.0e-4, 1.0e-2]},
    "amp": {"choice": [False, "bf16"]},
    "loss": {"choice": [
        "ce",
        {"name": "ce", "label_smoothing": {"uniform": [0.0, 0.2]}},
        {"name": "focal", "alpha": {"uniform": [0.25, 0.9]}, "gamma": {"choice": [1.0, 2.0, 3.0]}},
    ]},
    "scheduler": {"choice": [
        {"name": "cosine"},
        {"name": "step", "step_size": {"int": [1, 4]}, "gamma": {"uniform": [0.1, 0.5]}},
        {"name": "onecycle", "pct_start": {"uniform": [0.1, 0.4]}},
    ]},
}


def test_parameter_names_follow_the_tree():
    space = parse_space(FULL, KNOBS)
    assert space.parameter_names == [
        "lr", "weight_decay", "amp", "loss", "loss.label_smoothing", "loss.alpha", "loss.gamma",
        "scheduler", "scheduler.step_size", "scheduler.gamma", "scheduler.pct_start",
    ]
    assert space.categorical_names == ["weight_decay", "amp", "loss", "loss.gamma", "scheduler"]


def test_samples_respect_bounds_and_log_scale():
    space = parse_space(FULL, KNOBS)
    samples = space.sample(600, seed=1)
    lrs = [s["lr"] for s in samples]
    assert all(1e-4 <= lr <= 1e-1 for lr in lrs)
    # Log-uniform: about a third of the mass in each decade of [1e-4, 1e-1].
    per_decade = [sum(10 ** (k - 4) <= lr < 10 ** (k - 3) for lr in lrs) for k in range(3)]
    assert all(150 <= n <= 250 for n in per_decade), per_decade
    smoothing = [s["loss.label_smoothing"] for s in samples if "loss.label_smoothing" in s]
    assert smoothing and all(0.0 <= v <= 0.2 for v in smoothing)
    steps = {s["scheduler.step_size"] for s in samples if "scheduler.step_size" in s}
    assert steps == {1, 2, 3, 4}
    assert {s["amp"] for s in samples} == {"off", "bf16"}  # YAML's `off` (False) became "off"


def test_conditional_parameters_exist_only_with_their_option():
    space = parse_space(FULL, KNOBS)
    for flat in space.sample(200, seed=2):
        has_focal_params = "loss.alpha" in flat and "loss.gamma" in flat
        assert has_focal_params == (flat["loss"] == "focal")
        assert ("loss.label_smoothing" in flat) == (flat["loss"] == "ce(label_smoothing)")
        assert ("scheduler.pct_start" in flat) == (flat["scheduler"] == "onecycle")
        assert ("scheduler.step_size" in flat) == (flat["scheduler"] == "step")


def test_nest_fills_fixed_values_and_names_options():
    space = parse_space({"lr": 0.01, "scheduler": {"name": "step", "step_size": {"int": [1, 3]}, "gamma": 0.5}}, KNOBS)
    assert space.parameter_names == ["scheduler.step_size"]
    assert space.nest({"scheduler.step_size": 2}) == {"lr": 0.01, "scheduler": {"name": "step", "step_size": 2, "gamma": 0.5}}


def test_repeated_option_names_get_distinct_labels():
    space = parse_space({"loss": {"choice": ["ce", {"name": "ce", "label_smoothing": 0.1},
                                             {"name": "ce", "label_smoothing": 0.2}]}}, KNOBS)
    labels = [o.label for o in space.root["loss"].options]
    assert labels == ["ce", "ce(label_smoothing=0.1)", "ce(label_smoothing=0.2)"]
    assert space.nest({"loss": "ce(label_smoothing=0.2)"}) == {"loss": {"name": "ce", "label_smoothing": 0.2}}


def test_a_parameter_searched_by_two_options_is_named_per_option():
    space = parse_space({"scheduler": {"choice": [
        {"name": "step", "gamma": {"uniform": [0.1, 0.5]}},
        {"name": "cosine", "eta_min": 0.0},
        {"name": "onecycle", "pct_start": {"uniform": [0.1, 0.2]}},
    ]}}, KNOBS)
    assert "scheduler.gamma" in space.parameter_names  # only step searches gamma: no clash
    clash = parse_space({"loss": {"choice": [
        {"name": "ce", "label_smoothing": {"uniform": [0.0, 0.1]}},
        {"name": "ce", "label_smoothing": {"uniform": [0.1, 0.3]}},
    ]}}, KNOBS)
    names = clash.parameter_names
    assert names[0] == "loss" and len(names) == 3
    assert all(n.startswith("loss.ce(label_smoothing)#") and n.endswith(".label_smoothing") for n in names[1:])
    for flat in clash.sample(50, seed=0):
        nested = clash.nest(flat)["loss"]
        assert nested["name"] == "ce" and 0.0 <= nested["label_smoothing"] <= 0.3


def test_grid_expands_the_conditional_tree():
    space = parse_space({
        "weight_decay": {"choice": [0.0, 0.01]},
        "loss": {"choice": ["ce", {"name": "focal", "gamma": {"choice": [1.0, 2.0, 3.0]}}]},
        "scheduler": {"choice": ["cosine", {"name": "step", "step_size": {"int": [1, 3]}}]},
    }, KNOBS)
    # 2 weight decays x (ce + 3 focal) x (cosine + 3 step sizes)
    assert space.grid_size() == 2 * 4 * 4
    grid = space.grid()
    assert len(grid) == 32
    assert len({tuple(sorted(p.items())) for p in grid}) == 32
    assert all(("loss.gamma" in p) == (p["loss"] == "focal") for p in grid)


def test_grid_of_a_continuous_range_is_an_error_naming_it():
    space = parse_space({"lr": {"loguniform": [1e-4, 1e-2]}}, KNOBS)
    with pytest.raises(SpaceError, match=r"search\.lr: a loguniform range has no grid"):
        space.grid()


def test_defaults_use_default_then_first_choice_then_middle():
    space = parse_space({
        "lr": {"loguniform": [1e-4, 1e-2]},
        "weight_decay": {"uniform": [0.0, 0.1], "default": 0.05},
        "batch_size": {"int": [16, 64]},
        "amp": {"choice": ["off", "bf16"], "default": "bf16"},
        "loss": {"choice": ["ce", {"name": "focal", "gamma": {"choice": [1.0, 2.0]}}], "default": "focal"},
    }, KNOBS)
    defaults = space.defaults()
    assert math.isclose(defaults["lr"], 1e-3)  # geometric middle of a log range
    assert defaults["weight_decay"] == 0.05
    assert defaults["batch_size"] == 40
    assert defaults["amp"] == "bf16"
    assert defaults["loss"] == "focal" and defaults["loss.gamma"] == 1.0


def test_variants_pick_every_option_once():
    space = parse_space(FULL, KNOBS)
    variants = space.variants()
    assert {v["loss"] for v in variants} == {"ce", "ce(label_smoothing)", "focal"}
    assert {v["scheduler"] for v in variants} == {"cosine", "step", "onecycle"}
    assert {v.get("loss.gamma") for v in variants if v["loss"] == "focal"} == {1.0, 2.0, 3.0}


def test_optuna_tpe_runs_the_define_by_run_space():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = parse_space(FULL, KNOBS)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))

    def objective(trial):
        space.define_by_run(trial)
        params = trial.params
        return -abs(math.log10(params["lr"]) + 2) + (params["loss"] == "focal")

    study.optimize(objective, n_trials=30)
    best = study.best_params
    assert best["loss"] == "focal" and {"loss.alpha", "loss.gamma"} <= set(best)


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ({"lr": {"loguniform": [0.1, 0.001]}}, "search.lr.loguniform", "`low <= high` must hold, but got (low=0.1, high=0.001)"),
        ({"lr": {"loguniform": [0.0, 0.1]}}, "search.lr.loguniform", "`low > 0` must hold for loguniform"),
        ({"lr": {"uniform": [-1.0, 0.1]}}, "search.lr.uniform[0]", "must be > 0"),
        ({"lr": {"choice": []}}, "search.lr.choice", "non-empty list"),
        ({"lr": {"normal": [0, 1]}}, "search.lr", "expected a value or exactly one of choice, uniform, loguniform, int"),
        ({"lr": [0.1, 0.01]}, "search.lr", "write choice: [0.1, 0.01]"),
        ({"lrate": 0.1}, "search.lrate", "unknown knob 'lrate' (did you mean 'lr'?)"),
        ({"loss": "dice_loss"}, "search.loss", "unknown name 'dice_loss'"),
        ({"loss": {"choice": ["ce", {"name": "focal", "gamma": {"uniform": [3.0, 1.0]}}]}},
         "search.loss.choice[1].gamma.uniform", "`low <= high` must hold"),
        ({"loss": {"choice": ["ce", {"name": "focal", "gama": 2.0}]}},
         "search.loss.choice[1].gama", "'focal' has no parameter 'gama' (did you mean 'gamma'?)"),
        ({"loss": {"choice": ["ce", {"name": "focal", "alpha": {"uniform": [0.5, 1.5]}}]}},
         "search.loss.choice[1].alpha.uniform[1]", "must be <= 1.0, got 1.5"),
        ({"scheduler": {"name": "step", "step_size": {"uniform": [1, 3]}}},
         "search.scheduler.step_size", "integer parameter: write int: [1, 3]"),
        ({"amp": {"choice": ["off", "fp8"]}}, "search.amp.choice[1]", "must be one of ['off', 'fp16', 'bf16', 'auto'], got 'fp8'"),
        ({"batch_size": True}, "search.batch_size", "must be an integer, got bool True"),
        ({"loss": {"choice": [{"gamma": 2.0}]}}, "search.loss.choice[0]", "an option needs a name"),
    ],
)
def test_bad_entries_name_the_field_and_the_rule(raw, path, fragment):
    with pytest.raises(SpaceError) as info:
        parse_space(raw, KNOBS)
    assert info.value.path == path
    assert fragment in info.value.message
