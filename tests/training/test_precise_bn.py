"""Precise BatchNorm statistics: real layers, real data, and the LR-ASPP model whose validation lied."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tune_app.training import DataConfig, TrainConfig, TrainingRun, build_data
from tune_app.training.freeze import freeze
from tune_app.training.models import create_model
from tune_app.training.precise_bn import needs_recompute, recompute, training_batch_norms


def test_the_layers_that_train_are_found_and_frozen_ones_left_alone():
    model = create_model("timm/test_resnet", num_classes=3)
    everything = training_batch_norms(model)
    freeze(model, 2)  # stem and two stages: their BatchNorms become FrozenBatchNorm2d
    assert 0 < len(training_batch_norms(model)) < len(everything)
    loose = create_model("timm/test_resnet", num_classes=3)
    freeze(loose, "all", bn_eval=False)  # frozen weights, BatchNorm left as is: not training either
    assert training_batch_norms(loose) == [m for m in loose.modules() if isinstance(m, nn.BatchNorm2d)
                                           and m.weight.requires_grad]


def test_recompute_gives_the_true_statistics_of_the_batches():
    torch.manual_seed(0)
    net = nn.Sequential(nn.BatchNorm2d(3, momentum=0.01), nn.Dropout(0.5))
    batches = [torch.randn(16, 3, 5, 5) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1) + 4 for _ in range(6)]
    layers = training_batch_norms(net)
    assert recompute(net, layers, batches) == 6
    data = torch.cat(batches)
    torch.testing.assert_close(layers[0].running_mean, data.mean((0, 2, 3)), rtol=1e-4, atol=1e-4)
    # the mean of the batches' unbiased variances: close to the data's variance
    torch.testing.assert_close(layers[0].running_var, data.var((0, 2, 3)), rtol=0.05, atol=0.05)
    assert layers[0].momentum == 0.01 and net.training  # both as they were


def test_auto_recomputes_until_the_running_averages_can_have_converged():
    bn = [nn.BatchNorm2d(2, momentum=0.1)]
    assert needs_recompute(bn, steps=29) and not needs_recompute(bn, steps=30)
    assert not needs_recompute([nn.BatchNorm2d(2, momentum=None)], steps=1)  # a cumulative average already


def digits_run(precise_bn, epochs=2) -> list[dict]:
    data = DataConfig(image_size=16)
    config = TrainConfig(model="timm/test_resnet", data=data, epochs=epochs, lr=3e-3, device="cpu",
                         precise_bn=precise_bn)
    return list(TrainingRun(config, data=build_data(data)).epochs())


@pytest.fixture(scope="module")
def auto_and_off() -> tuple[list[dict], list[dict]]:
    return digits_run("auto"), digits_run("off")


@pytest.mark.slow
def test_the_cost_is_reported_and_auto_stops_once_converged(auto_and_off):
    # test_resnet's BatchNorms have momentum 0.1: 30 steps; digits at batch 64 take 22 per epoch
    auto, off = auto_and_off
    assert auto[0]["precise_bn_batches"] == 8 and auto[0]["precise_bn_s"] > 0  # 512 images in batches of 64
    assert auto[1]["precise_bn_batches"] == 0 and auto[1]["precise_bn_s"] == 0.0
    assert [m["precise_bn_batches"] for m in off] == [0, 0]
    assert [m["precise_bn_batches"] for m in digits_run(30, epochs=1)] == [30]  # more than one pass


def test_precise_statistics_leave_the_training_itself_unchanged(auto_and_off):
    auto, off = auto_and_off
    assert [m["train_loss"] for m in auto] == [m["train_loss"] for m in off]
    assert auto[0]["val_loss"] != off[0]["val_loss"]  # the evaluation is what changed


@pytest.mark.slow
def test_lraspp_from_scratch_on_shapes_validates_what_it_learned():
    """The case that showed it: eval-mode statistics of momentum 0.01 after 200 steps say nothing."""
    data = DataConfig(dataset="shapes", task="segmentation", image_size=64)
    bundle = build_data(data)

    def run(precise_bn, epochs):
        config = TrainConfig(model="torchvision/lraspp_mobilenet_v3_large", data=data, batch_size=16, epochs=epochs,
                             lr=3e-3, loss={"name": "ce"}, scheduler={"name": "cosine"}, device="cpu",
                             precise_bn=precise_bn)
        return list(TrainingRun(config, data=bundle).epochs())

    off = run("off", epochs=2)
    assert off[-1]["train_loss"] < 0.7 * off[0]["train_loss"]  # it learns...
    assert max(m["val_dice"] for m in off) == pytest.approx(0.0, abs=0.01)  # ...and validation shows nothing
    default = run("auto", epochs=5)
    # What the claim needs: validation now shows the learning (runs here reach 0.68-0.75; 0.7 failed twice
    # by a hair), not a value that depends on this machine's floating-point noise.
    assert max(m["val_dice"] for m in default) >= 0.5
