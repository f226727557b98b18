"""Loading, overriding and validating spec files."""

from __future__ import annotations

import pytest
import yaml

from tune_app.errors import SpecError
from tune_app.spec import apply_override, load_spec, validate_spec
from tune_app.training import DataConfig

from ..conftest import SEARCH_SPACES, write_spec


@pytest.mark.parametrize("path", SEARCH_SPACES, ids=lambda p: p.name)
def test_every_bundled_search_space_loads(path):
    spec = load_spec(path)
    assert spec.trial_count() >= 1
    assert spec.space.parameter_names  # each bundled file searches something
    config = spec.train_config()
    assert config.model == spec.model.name and config.epochs == spec.train.epochs


def test_defaults_fill_missing_sections(tmp_path):
    spec = load_spec(write_spec(tmp_path / "min.yaml", {"model": {"name": "timm/test_resnet"}}))
    assert spec.name == "min"  # the file's name when the spec has none
    assert (spec.metric, spec.mode) == ("val_acc", "max")
    assert spec.tune.search_alg == "optuna" and spec.tune.trial_scheduler == "asha"


def test_mode_defaults_to_the_metric_direction(tmp_path, tiny_spec_data):
    tiny_spec_data["train"]["metric"] = "val_loss"
    tiny_spec_data["search"]["loss"] = "focal"  # fixed, so losses stay comparable
    spec = load_spec(write_spec(tmp_path / "s.yaml", tiny_spec_data))
    assert spec.mode == "min"


def test_overrides_apply_before_validation(tiny_spec_file):
    spec = load_spec(tiny_spec_file, ["train.epochs=5", "search.lr=0.05", "tune.resources.cpu=2",
                                      "search.loss.choice[1].gamma={choice: [3.0]}"], name="other")
    assert spec.train.epochs == 5 and spec.name == "other" and spec.tune.resources.cpu == 2.0
    assert "lr" not in spec.space.parameter_names and spec.train_config().lr == 0.05
    flat = spec.space.defaults({"loss": "focal"})
    assert flat["loss.gamma"] == 3.0


def test_an_override_that_breaks_the_spec_is_reported_at_its_path(tiny_spec_file):
    with pytest.raises(SpecError) as info:
        load_spec(tiny_spec_file, ["train.epochs=0"])
    assert info.value.problems == [("train.epochs", "Input should be greater than or equal to 1, got 0")]


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("train.epochs", "--set expects key=value"),
        ("=3", "--set expects key=value"),
        ("train..epochs=3", "cannot read the key"),
        ("train.epochs.x=3", "train.epochs is 8, not a mapping"),
        ("search.loss.choice[7].gamma=1", "search.loss.choice[7] does not exist"),
        ("train.epochs=[1, 2", "is not valid YAML"),
    ],
)
def test_bad_overrides(tiny_spec_data, item, fragment):
    tiny_spec_data["train"]["epochs"] = 8
    with pytest.raises(SpecError, match=None) as info:
        apply_override(tiny_spec_data, item)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        ({"train": {"epoch": 3}}, "train.epoch", "unknown key (did you mean 'epochs'?)"),
        ({"trian": {}}, "trian", "unknown key (did you mean 'train'?)"),
        ({"train": {"epochs": "three"}}, "train.epochs", "Input should be a valid integer, got 'three'"),
        ({"train": {"epochs": 0}}, "train.epochs", "greater than or equal to 1"),
        ({"train": {"metric": "accuracy"}}, "train.metric", "unknown name 'accuracy'"),
        ({"train": {"optimizer": "adamm"}}, "train.optimizer", "unknown name 'adamm' (did you mean 'adam'?)"),
        ({"model": {"name": "timm/resnet81"}}, "model.name", "unknown timm model 'resnet81'; did you mean"),
        ({"model": {"name": "keras/resnet18"}}, "model.name", "unknown model source 'keras'"),
        ({"model": {"name": "resnet18"}}, "model.name", "must look like <source>/<architecture>"),
        ({"data": {"dataset": "cifar"}}, "data.dataset", "unknown dataset 'cifar'; valid: digits, shapes, folder"),
        ({"task": "segmentation", "train": {"metric": "val_dice"}}, "data.dataset", "'digits' supports classification, not segmentation"),
        ({"data": {"dataset": "folder", "train_dir": "/nonexistent/x"}}, "data.train_dir", "no such directory: /nonexistent/x"),
        ({"search": {"freeze_depth": {"int": [0, 9]}}}, "search.freeze_depth", "freeze_depth 9 is more than timm/test_resnet's 4 stages"),
        ({"model": {"pretrained": "/nonexistent/w.pth"}}, "model.pretrained", "no weights file at"),
        ({"tune": {"scheduler": "pbt"}}, "tune.search_alg", "pbt draws its initial population at random"),
        ({"tune": {"scheduler": {"name": "asha", "grace": 2}}}, "tune.scheduler", "'asha' has no option 'grace'"),
        ({"tune": {"points_to_evaluate": [{"lr": 5.0}]}}, "tune.points_to_evaluate[0].lr", "must be a number in"),
        ({"tune": {"search_alg": "bayes"}}, "tune.search_alg", "valid: random, grid, optuna, tpe, gp, cmaes, qmc"),
        ({"tune": {"scheduler": "pb2"}}, "tune.scheduler", "unknown name 'pb2'"),
        ({"tune": {"num_samples": 0}}, "tune.num_samples", "greater than or equal to 1"),
        ({"tune": {"resources": {"gpu": 1.5}}}, "tune.resources.gpu", "a fraction of a GPU must be <= 1"),
        ({"tune": {"resources": {"cpu": 0}}}, "tune.resources.cpu", "greater than 0"),
        ({"name": "../escape"}, "name", "must be a plain directory name"),
        ({"search": {"loss": {"choice": ["ce", {"name": "focal", "gamma": -1.0}]}}},
         "search.loss.choice[1].gamma", "must be >= 0, got -1.0"),
        ({"search": {"optimizer": {"choice": ["sgd", "adamw"]}}, "train": {"optimizer": "adamw"}},
         "search.optimizer", "is also set at train.optimizer"),
        ({"train": {"metric": "val_loss"}}, "train.metric", "val_loss cannot rank trials that use different losses"),
        ({"tune": {"search_alg": "grid"}}, "search.lr", "a loguniform range has no grid"),
    ],
)
def test_bad_specs_name_the_field(tmp_path, tiny_spec_data, change, path, fragment):
    for section, value in change.items():
        if isinstance(value, dict) and isinstance(tiny_spec_data.get(section), dict):
            tiny_spec_data[section].update(value)
        else:
            tiny_spec_data[section] = value
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(tmp_path / "bad.yaml", tiny_spec_data))
    matching = [message for p, message in info.value.problems if p == path]
    assert matching, info.value.problems
    assert fragment in matching[0]


@pytest.mark.parametrize("scale", [[0.9, 0.1], [0.0, 0.5], [0.5, 1.5]])
def test_data_scale_is_checked_in_one_place_the_spec_and_the_data_config_say_the_same(tmp_path, tiny_spec_data,
                                                                                       scale):
    tiny_spec_data["data"]["scale"] = scale
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(tmp_path / "bad.yaml", tiny_spec_data))
    [problem] = [f"{p}: {message}" for p, message in info.value.problems if p == "data.scale"]
    assert problem == f"data.scale: must be [low, high] with 0 < low <= high <= 1, got {scale}"
    with pytest.raises(ValueError) as raised:
        DataConfig(scale=scale)
    assert str(raised.value) == problem


def test_all_problems_are_reported_at_once(tmp_path, tiny_spec_data):
    tiny_spec_data["train"].update(epochs=0, optimizer="adamm")
    tiny_spec_data["tune"]["num_samples"] = -1
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(tmp_path / "bad.yaml", tiny_spec_data))
    assert {p for p, _ in info.value.problems} == {"train.epochs", "tune.num_samples"}
    assert str(info.value).startswith(f"{tmp_path / 'bad.yaml'}: 2 problems:")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: x\ntrain: {epochs: 3\n", "invalid YAML: line 3, column 1"),
        ("name: !!python/object/apply:os.system ['echo hacked']\n", "could not determine a constructor"),
        ("- just\n- a list\n", "the file must hold a mapping"),
    ],
)
def test_malformed_files(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert fragment in str(info.value)


def test_missing_and_huge_files(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "absent.yaml")
    huge = tmp_path / "huge.yaml"
    huge.write_text("name: x\n" + "# padding\n" * 200_000)
    with pytest.raises(SpecError, match="a spec may be at most"):
        load_spec(huge)


def test_resolved_spec_round_trips(tiny_spec_file):
    spec = load_spec(tiny_spec_file)
    again = validate_spec(yaml.safe_load(yaml.safe_dump(spec.to_dict(), sort_keys=False)))
    assert again.to_dict() == spec.to_dict()
    assert again.space.parameter_names == spec.space.parameter_names


def test_fixed_at_gives_a_spec_that_trains_that_trial(tiny_spec_file):
    spec = load_spec(tiny_spec_file)
    flat = {"lr": 0.004, "loss": "focal", "loss.alpha": 0.5, "loss.gamma": 2.0, "scheduler": "step",
            "scheduler.step_size": 2}
    fixed = validate_spec(yaml.safe_load(yaml.safe_dump(spec.fixed_at(flat))))
    assert fixed.space.parameter_names == []
    assert fixed.train_config() == spec.train_config(flat)


def test_a_bare_name_finds_the_bundled_search_space(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the project directory: the package's own folder is looked in too
    spec = load_spec("resnet")
    assert spec.name == "resnet18-digits" and spec.model.name == "timm/resnet18"


def test_a_missing_file_error_lists_the_bundled_search_spaces(tmp_path):
    with pytest.raises(SpecError) as info:
        load_spec("quickstrat")
    message = str(info.value)
    assert "no such file: quickstrat (did you mean 'quickstart'?)" in message
    assert "the bundled search spaces: photos, quickstart, resnet, shapes" in message


def test_a_validated_spec_is_frozen_and_changed_by_copy(tiny_spec_file):
    import pydantic

    spec = load_spec(tiny_spec_file)
    with pytest.raises(pydantic.ValidationError):
        spec.model.pretrained = True
    changed = spec.with_weights("/weights/file.safetensors")
    assert spec.model.pretrained is False and changed.model.pretrained == "/weights/file.safetensors"
    assert changed.space is spec.space and changed.train_config().pretrained == "/weights/file.safetensors"


def test_the_train_config_holds_the_data_section_one_to_one(tiny_spec_file):
    spec = load_spec(tiny_spec_file, ["data.hflip=true", "data.scale=[0.5, 1.0]", "data.num_workers=1"])
    config = spec.train_config()
    data = spec.data.model_dump(exclude={"batch_size"})
    assert {k: getattr(config.data, k) for k in data} == {**data, "scale": (0.5, 1.0)}
    assert config.task == config.data.task == "classification" and config.batch_size == spec.data.batch_size


def test_optimizer_parameters_come_from_train_or_search(tiny_spec_data, tmp_path):
    tiny_spec_data["train"]["optimizer"] = {"name": "adamw", "betas": [0.9, 0.95]}
    spec = load_spec(write_spec(tmp_path / "a.yaml", tiny_spec_data))
    assert spec.train_config().optimizer == {"name": "adamw", "betas": [0.9, 0.95]}
    del tiny_spec_data["train"]["optimizer"]
    tiny_spec_data["search"]["optimizer"] = {"choice": ["adamw", {"name": "sgd", "nesterov": {"choice": [True, False]}}]}
    spec = load_spec(write_spec(tmp_path / "b.yaml", tiny_spec_data))
    assert "optimizer" in spec.space.parameter_names and "optimizer.nesterov" in spec.space.parameter_names
    flat = {**spec.space.defaults(), "optimizer": "sgd", "optimizer.nesterov": False}
    assert spec.train_config(flat).optimizer == {"name": "sgd", "nesterov": False}


def test_strategy_options_are_canonical_after_validation(tiny_spec_file):
    spec = load_spec(tiny_spec_file, ["tune.scheduler={name: asha, reduction_factor: 3}"])
    assert spec.tune.trial_scheduler_options == {"reduction_factor": 3.0}
    assert isinstance(spec.tune.trial_scheduler_options["reduction_factor"], float)


@pytest.mark.parametrize("key", ["int", "float", "str", "bool", "none", "train.float"])
def test_an_unknown_key_named_like_a_type_is_reported_by_its_name(tmp_path, tiny_spec_data, key):
    # pydantic's locations end in union members called so; an unknown key of that name is still the key
    with pytest.raises(SpecError, match=rf"{key.replace('.', '[.]')}: unknown key"):
        load_spec(write_spec(tmp_path / "s.yaml", tiny_spec_data), [f"{key}="])
