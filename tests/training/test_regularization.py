"""Drop path and dropout reach the layers of each library's models; models without them are refused."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tune_app.training import TrainConfig
from tune_app.training.datasets import DataConfig
from tune_app.training.engine import TrainingRun
from tune_app.training.models import create_model, regularization_problem
from tune_app.training.regularization import (
    constructor_arguments,
    drop_path_rates,
    dropout_rates,
)

SEG = "segmentation"


@pytest.mark.parametrize("name, task, encoder", [("timm/test_resnet", "classification", None),
                                                  ("smp/Unet", SEG, "test_resnet")])
def test_timm_drop_path_reaches_every_block_rising_to_the_rate(name, task, encoder):
    model = create_model(name, 3, task=task, encoder=encoder, regularization={"drop_path": 0.2})
    rates = drop_path_rates(model)
    assert len(rates) == 3 and max(rates) == pytest.approx(0.2)  # timm's rule: rising linearly with depth
    assert rates == sorted(rates) and min(rates) > 0
    assert drop_path_rates(create_model(name, 3, task=task, encoder=encoder)) == []  # off: no layer at all


def test_torchvision_stochastic_depth_reaches_the_blocks():
    rates = drop_path_rates(create_model("torchvision/efficientnet_b0", 3, regularization={"drop_path": 0.4}))
    assert rates == pytest.approx([0.4 * i / 16 for i in range(16)])  # torchvision's rule: block i of 16
    default = drop_path_rates(create_model("torchvision/efficientnet_b0", 3))
    assert default == pytest.approx([0.2 * i / 16 for i in range(16)])  # its own default, 0.2, when not set


@pytest.mark.parametrize("name", ["timm/test_resnet", "torchvision/mobilenet_v3_small"])
def test_dropout_reaches_the_head_and_acts_only_in_training(name):
    torch.manual_seed(0)
    model = create_model(name, 3, regularization={"dropout": 0.4})
    assert 0.4 in dropout_rates(model)
    images = torch.randn(2, 3, 32, 32)
    model.train()
    assert not torch.equal(model(images), model(images))
    model.eval()
    assert torch.equal(model(images), model(images))


def test_zero_and_none_build_the_default_model():
    assert constructor_arguments("torchvision/resnet18", {"drop_path": 0, "dropout": None}) == {}
    torch.manual_seed(0)
    default = create_model("timm/test_resnet", 3)
    torch.manual_seed(0)
    off = create_model("timm/test_resnet", 3, regularization={"drop_path": 0.0, "dropout": 0.0})
    assert repr(off) == repr(default)
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), off.state_dict().values()))


@pytest.mark.parametrize("name, knob, task, encoder, refused", [
    ("timm/test_resnet", "drop_path", "classification", None, False),
    ("timm/test_resnet", "dropout", "classification", None, False),
    ("torchvision/convnext_tiny", "drop_path", "classification", None, False),
    ("torchvision/resnet18", "drop_path", "classification", None, True),  # no such argument
    ("torchvision/resnet18", "dropout", "classification", None, True),
    ("smp/Unet", "drop_path", SEG, "test_resnet", False),
    ("smp/Unet", "dropout", SEG, "test_resnet", True),  # taken by its encoder, which has no classifier
])
def test_a_model_without_the_layer_is_refused_by_name(name, knob, task, encoder, refused, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNE_APP_CACHE", str(tmp_path))  # found, not read from an earlier answer
    problem = regularization_problem(name, knob, task=task, encoder=encoder)
    if refused:
        assert problem.startswith(f"{name} has no ") and ("timm models take" in problem)
    else:
        assert problem is None


def test_a_bad_model_name_is_not_called_a_missing_layer():
    with pytest.raises(ValueError, match="unknown"):
        regularization_problem("timm/no_such_net", "drop_path")


@pytest.mark.slow  # trains an epoch
def test_a_training_run_builds_trains_and_checkpoints_with_them():
    config = TrainConfig(model="timm/test_resnet", epochs=1, batch_size=64, drop_path=0.1, dropout=0.2,
                         data=DataConfig(image_size=16))
    run = TrainingRun(config)
    assert max(drop_path_rates(run.model)) == pytest.approx(0.1) and 0.2 in dropout_rates(run.model)
    result = next(iter(run.epochs()))
    assert result["epoch"] == 1
    saved = run.state_dict()["config"]
    assert saved["drop_path"] == 0.1 and saved["dropout"] == 0.2
    assert TrainConfig.from_dict(saved).regularization == {"drop_path": 0.1, "dropout": 0.2}
    # as PBT restores a better trial's checkpoint under perturbed values: the rates hold no weights
    perturbed = TrainingRun(dataclasses.replace(config, drop_path=0.3, dropout=0.0), data=run.data)
    perturbed.load_state_dict(run.state_dict())
    assert max(drop_path_rates(perturbed.model)) == pytest.approx(0.3) and perturbed.epoch == 1
    assert all(torch.equal(a, b) for a, b in zip(run.model.state_dict().values(),
                                                 perturbed.model.state_dict().values()))
