"""The named checks that join sections of a spec, each on its own."""

from __future__ import annotations

import copy

import pytest

from tune_app.errors import SpecError
from tune_app.spec import checks, validate_spec

from ..conftest import TINY_SPEC


def spec_with(**sections):
    """The tiny spec with ``sections`` merged in, validated with every check but the one under test."""
    data = copy.deepcopy(TINY_SPEC)
    for key, value in sections.items():
        data[key] = {**data[key], **value} if isinstance(data.get(key), dict) and key != "search" else value
    return validate_spec(data)


def test_every_check_passes_the_tiny_spec():
    spec = spec_with()
    for check in checks.SECTION_CHECKS + checks.SEARCH_CHECKS:
        assert check(spec) == [], check.__name__


def test_each_check_has_a_name_and_a_docstring():
    for check in checks.SECTION_CHECKS + checks.SEARCH_CHECKS:
        assert check.__name__ != "<lambda>" and check.__doc__, check


@pytest.mark.parametrize(("check", "changes", "path", "fragment"), [
    (checks.dataset_fits_task, {"data": {"dataset": "shapes"}}, "data.dataset", "supports segmentation"),
    (checks.metric_fits_task, {"train": {"metric": "val_dice"}}, "train.metric", "unknown name 'val_dice'"),
    (checks.model_fits_task, {"model": {"name": "smp/Unet"}}, "model.name", "smp/Unet is a segmentation model"),
    (checks.knobs_set_once, {"search": {**TINY_SPEC["search"], "optimizer": "sgd"}}, "search.optimizer",
     "is also set at train.optimizer"),
    (checks.knobs_set_once, {"data": {"scale": [0.5, 1.0]},
                             "search": {**TINY_SPEC["search"], "scale": {"choice": [[0.08, 1.0], [0.35, 1.0]]}}},
     "search.scale", "is also set at data.scale"),
    (checks.freeze_depth_fits_model, {"search": {**TINY_SPEC["search"], "freeze_depth": 9}}, "search.freeze_depth",
     "more than timm/test_resnet's 4 stages"),
    (checks.regularization_fits_model, {"model": {"name": "torchvision/resnet18"},
                                        "search": {**TINY_SPEC["search"], "drop_path": {"uniform": [0.0, 0.2]}}},
     "search.drop_path", "torchvision/resnet18 has no drop path (stochastic depth)"),
    (checks.regularization_fits_model, {"task": "segmentation", "data": {"dataset": "shapes"},
                                        "model": {"name": "smp/Unet", "encoder": "test_resnet"},
                                        "train": {"metric": "val_dice"},
                                        "search": {"lr": 0.01, "dropout": {"choice": [0.0, 0.3]}}},
     "search.dropout", "smp/Unet has no dropout before its classifier"),
    (checks.layer_decay_fits_model, {"model": {"name": "torchvision/resnet18"},
                                     "search": {**TINY_SPEC["search"], "layer_decay": {"uniform": [0.6, 0.9]}}},
     "search.layer_decay", "torchvision/resnet18 has no layer groups for layer-wise lr decay"),
    (checks.mixing_fits_task_and_loss, {"search": {**TINY_SPEC["search"], "loss": {"choice": ["ce", "dice"]},
                                                   "mixup": {"uniform": [0.0, 0.8]}}},
     "search.loss", "loss 'dice' takes no mixed labels; with mixup or cutmix use one of ce, bce, focal"),
    (checks.mixing_fits_task_and_loss, {"task": "segmentation", "data": {"dataset": "shapes"},
                                        "model": {"name": "smp/Unet", "encoder": "test_resnet"},
                                        "train": {"metric": "val_dice"}, "search": {"lr": 0.01, "cutmix": 1.0}},
     "search.cutmix", "mixup and cutmix mix class labels: classification only, not segmentation"),
    (checks.augment_fits_task, {"task": "segmentation", "data": {"dataset": "shapes"},
                                "model": {"name": "smp/Unet", "encoder": "test_resnet"},
                                "train": {"metric": "val_dice"},
                                "search": {"lr": 0.01, "augment": {"choice": ["none", "trivialaugment"]}}},
     "search.augment", "augment 'trivialaugment' is for classification"),
    (checks.warmup_fits_the_budget, {"train": {"epochs": 2},
                                     "search": {**TINY_SPEC["search"], "scheduler": {"choice": [
                                         "step", {"name": "cosine", "warmup_epochs": {"int": [0, 2]}}]}}},
     "search.scheduler.choice[1].warmup_epochs", "warmup_epochs 2 leaves none of a trial's 2 epochs"),
    (checks.objective_comparable, {"train": {"metric": "val_loss"}}, "train.metric", "val_loss cannot rank"),
    (checks.grid_is_finite, {"tune": {"search_alg": "grid"}}, "search.lr", "a loguniform range has no grid"),
    (checks.points_fit, {"tune": {"points_to_evaluate": [{"lr": 1.0}]}}, "tune.points_to_evaluate[0].lr",
     "must be a number in [0.001, 0.01], got 1.0"),
    (checks.sampler_has_continuous_parameters, {"tune": {"search_alg": "cmaes"},
                                                "search": {"loss": {"choice": ["ce", "focal"]}}},
     "tune.search_alg", "cmaes models continuous parameters"),
    (checks.pbt_can_evolve, {"tune": {"scheduler": "pbt"}}, "tune.search_alg", "set search_alg: random"),
    (checks.hyperband_creates_all_trials, {"tune": {"scheduler": "hyperband"}}, "tune.max_concurrent",
     "needs every trial created up front"),
    (checks.checkpoints_for_restores, {"tune": {"scheduler": "hyperband", "max_concurrent": None,
                                                "checkpoint_every": 0}}, "tune.checkpoint_every", "must be >= 1"),
])
def test_a_check_names_the_field_it_rejects(check, changes, path, fragment):
    with pytest.raises(SpecError) as info:
        spec_with(**changes)
    found = [p for p in info.value.problems if p[0] == path]
    assert found, info.value.problems
    assert fragment in found[0][1]
    # and it is this check that says so
    assert any(fragment in message for _, message in check(spec_unchecked(**changes)))


def spec_unchecked(**sections):
    """The spec as validation sees it before the cross-section checks: sections valid, space parsed."""
    from tune_app.spec import ExperimentSpec
    from tune_app.spec.space import parse_space
    from tune_app.training import KNOBS

    data = copy.deepcopy(TINY_SPEC)
    for key, value in sections.items():
        data[key] = {**data[key], **value} if isinstance(data.get(key), dict) and key != "search" else value
    spec = ExperimentSpec.model_validate(data)
    spec._space = parse_space(spec.search, KNOBS)
    return spec


def test_regularization_off_or_on_a_model_that_has_it_passes():
    search = TINY_SPEC["search"]
    assert checks.regularization_fits_model(spec_with(search={**search, "drop_path": {"uniform": [0.0, 0.3]},
                                                              "dropout": 0.2})) == []
    # 0 is off: any model takes it
    assert checks.regularization_fits_model(spec_with(model={"name": "torchvision/resnet18"},
                                                      search={**search, "drop_path": 0.0,
                                                              "dropout": {"choice": [0.0]}})) == []


def test_layer_decay_on_a_timm_model_or_off_passes():
    search = TINY_SPEC["search"]
    assert checks.layer_decay_fits_model(spec_with(search={**search, "layer_decay": {"uniform": [0.6, 1.0]}})) == []
    assert checks.layer_decay_fits_model(spec_with(model={"name": "torchvision/resnet18"},  # 1 is off
                                                   search={**search, "layer_decay": 1.0})) == []


def test_mixing_off_or_with_losses_that_take_mixed_labels_passes():
    search = TINY_SPEC["search"]  # ce and focal
    assert checks.mixing_fits_task_and_loss(spec_with(search={**search, "mixup": 0.8, "cutmix": {"choice": [0, 1]},
                                                              "mixup_mode": "elem"})) == []
    assert checks.mixing_fits_task_and_loss(spec_with(search={**search, "loss": "dice", "mixup": 0.0})) == []


def test_searched_flip_and_crop_range_reach_the_trial_s_data_config():
    spec = spec_with(search={**TINY_SPEC["search"], "hflip": {"choice": [False, True]},
                             "scale": {"choice": [[0.08, 1.0], [0.35, 1.0]]}})
    flat = {**spec.space.defaults(), "hflip": True, "scale": "[0.35, 1.0]"}  # Optuna's label of a list choice
    config = spec.train_config(flat)
    assert (config.data.hflip, config.data.scale) == (True, (0.35, 1.0))
    with pytest.raises(SpecError, match=r"search.scale.choice\[1\]: must be \[low, high\] with 0 < low <= high"):
        spec_with(search={**TINY_SPEC["search"], "scale": {"choice": [[0.08, 1.0], [0.9, 0.2]]}})


def test_an_unknown_augment_policy_names_the_valid_ones():
    with pytest.raises(SpecError) as info:
        spec_with(search={**TINY_SPEC["search"], "augment": {"name": "randaugmnt", "magnitude": 9}})
    assert any(path.startswith("search.augment") and "randaugment" in message and "trivialaugment" in message
               for path, message in info.value.problems), info.value.problems


def test_losses_fit_task_reports_a_loss_of_the_other_task(monkeypatch):
    from tune_app.training import losses

    # every built-in loss serves both tasks; a classification-only entry shows the check at work
    monkeypatch.setitem(losses.LOSSES, "ce", losses.LossInfo(losses.CrossEntropyLoss, tasks=("classification",)))
    spec = spec_unchecked(task="segmentation", data={"dataset": "shapes"}, model={"name": "smp/Unet",
                                                                                  "encoder": "test_resnet"},
                          train={"metric": "val_dice"})
    assert checks.losses_fit_task(spec) == [("search.loss", "loss 'ce' does not apply to task 'segmentation'; "
                                                            "it supports classification")]


def test_a_model_directory_must_hold_an_export_of_this_model(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match="model.pretrained: .*empty is a directory but not an exported model: it "
                                        "has no config.json and no model.safetensors"):
        spec_with(model={"pretrained": str(tmp_path / "empty")})
    exported = tmp_path / "best_model"
    exported.mkdir()
    (exported / "config.json").write_text('{"model": "timm/resnet18", "encoder": null}')
    (exported / "model.safetensors").write_bytes(b"")
    with pytest.raises(SpecError, match="holds an exported timm/resnet18, not timm/test_resnet; set model.name: "
                                        "timm/resnet18"):
        spec_with(model={"pretrained": str(exported)})
    assert checks.pretrained_fits_model(spec_with(model={"name": "timm/resnet18", "pretrained": str(exported)})) == []
