"""Search algorithms and trial schedulers (tune_app.sweep.strategies): every registered one builds from a spec."""

from __future__ import annotations

import pytest

from tune_app.spec import load_spec
from tune_app.sweep.strategies import SEARCH_ALGS, TRIAL_SCHEDULERS

from ..conftest import write_spec


@pytest.fixture
def finite_file(tmp_path, tiny_spec_data):
    tiny_spec_data["search"]["lr"] = {"choice": [1e-3, 1e-2]}
    tiny_spec_data["search"]["loss"]["choice"][1]["alpha"] = 0.5
    return write_spec(tmp_path / "finite.yaml", tiny_spec_data)


@pytest.fixture
def finite_spec(finite_file):
    return load_spec(finite_file)


@pytest.mark.parametrize("name", sorted(SEARCH_ALGS))
def test_each_search_algorithm_suggests_valid_configs(name, finite_file):
    finite_spec = load_spec(finite_file, [f"tune.search_alg={name}"])
    searcher = SEARCH_ALGS[name].factory(finite_spec.search_setup(), {})
    names = set(finite_spec.space.parameter_names)
    for i in range(4):
        flat = searcher.suggest(f"trial_{i}")
        assert {"lr", "loss", "scheduler"} <= set(flat) <= names
        config = finite_spec.train_config(flat)  # every suggestion turns into a trainable config
        assert config.loss["name"] in ("ce", "focal")


def test_grid_search_hands_out_each_point_once_then_finishes(finite_spec):
    searcher = SEARCH_ALGS["grid"].factory(finite_spec.search_setup(), {})
    points = []
    while (point := searcher.suggest(f"t{len(points)}")) != "FINISHED":
        points.append(point)
    # 2 lrs x (ce + focal with 2 gammas) x (cosine + step with 2 step sizes)
    assert len(points) == finite_spec.space.grid_size() == 2 * 3 * 3
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)


def test_grid_searcher_state_survives_a_save_and_restore(finite_spec, tmp_path):
    searcher = SEARCH_ALGS["grid"].factory(finite_spec.search_setup(), {})
    first = [searcher.suggest(str(i)) for i in range(3)]
    searcher.save(str(tmp_path / "grid.json"))
    restored = SEARCH_ALGS["grid"].factory(finite_spec.search_setup(), {})
    restored.restore(str(tmp_path / "grid.json"))
    assert restored.suggest("3") == finite_spec.space.grid()[3]
    assert first == finite_spec.space.grid()[:3]


@pytest.mark.parametrize("name", sorted(TRIAL_SCHEDULERS))
def test_each_trial_scheduler_builds(name, finite_spec):
    scheduler = TRIAL_SCHEDULERS[name].factory(finite_spec.search_setup(), {})
    assert hasattr(scheduler, "on_trial_result")


def test_asha_budget_follows_the_epochs(finite_file):
    finite_spec = load_spec(finite_file, ["train.epochs=6"])
    scheduler = TRIAL_SCHEDULERS["asha"].factory(finite_spec.search_setup(), {})
    assert scheduler._max_t == 6 and scheduler._time_attr == "training_iteration"


def test_asha_defaults_are_ray_defaults_and_options_change_the_rungs(finite_file):
    import inspect

    from ray.tune.schedulers import ASHAScheduler

    finite_spec = load_spec(finite_file, ["train.epochs=9"])
    ray_defaults = inspect.signature(ASHAScheduler.__init__).parameters
    ours = TRIAL_SCHEDULERS["asha"].factory(finite_spec.search_setup(), {})
    assert ours._reduction_factor == ray_defaults["reduction_factor"].default == 4
    assert [m for m, _ in ours._brackets[0]._rungs] == [4, 1]  # epochs at which weak trials are stopped
    custom = TRIAL_SCHEDULERS["asha"].factory(finite_spec.search_setup(), {"grace_period": 2, "reduction_factor": 2})
    assert [m for m, _ in custom._brackets[0]._rungs] == [8, 4, 2]


@pytest.mark.parametrize("name", sorted(SEARCH_ALGS))
def test_building_a_search_algorithm_warns_of_nothing_experimental(name, finite_file):
    import warnings

    import optuna

    spec = load_spec(finite_file, [f"tune.search_alg={name}"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SEARCH_ALGS[name].factory(spec.search_setup(), {})
    assert not [w for w in caught if issubclass(w.category, optuna.exceptions.ExperimentalWarning)]


def test_the_strategy_registries_load_no_ray():
    import subprocess
    import sys

    code = ("import sys, tune_app.sweep.strategies as s; assert s.SEARCH_ALGS and s.TRIAL_SCHEDULERS; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"
