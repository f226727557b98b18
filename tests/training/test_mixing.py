"""Mixup and CutMix: timm's draws and targets, soft-target losses, reproducible and resumable in a run."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy

from tune_app.training import TrainConfig
from tune_app.training.datasets import DataConfig
from tune_app.training.engine import TrainingRun
from tune_app.training.losses import create_loss
from tune_app.training.mixing import BatchMixing, MixingConfig

CLASSES = 5


def _batch(count: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(count)
    return torch.rand(count, 3, 16, 16, generator=generator), torch.randint(0, CLASSES, (count,), generator=generator)


def _timm(config: MixingConfig, smoothing: float = 0.0) -> Mixup:
    return Mixup(mixup_alpha=config.mixup, cutmix_alpha=config.cutmix, prob=config.prob,
                 switch_prob=config.switch_prob, mode=config.mode, label_smoothing=smoothing, num_classes=CLASSES)


@pytest.mark.parametrize("config", [MixingConfig(mixup=0.8), MixingConfig(cutmix=1.0),
                                    MixingConfig(mixup=0.8, cutmix=1.0, switch_prob=0.5, prob=0.7),
                                    MixingConfig(mixup=0.2, cutmix=1.0, mode="pair"),
                                    MixingConfig(mixup=0.4, cutmix=1.0, mode="elem")],
                         ids=["mixup", "cutmix", "both", "pair", "elem"])
def test_images_and_targets_equal_timms_for_the_same_draws(config):
    mixing = BatchMixing(config, CLASSES)
    reference = _timm(config)
    mixed_any = False
    for seed in range(6):
        images, targets = _batch()
        np.random.seed(seed)
        ours = mixing(images.clone(), targets)
        np.random.seed(seed)
        theirs = reference(images.clone(), targets)
        torch.testing.assert_close(ours[0], theirs[0], rtol=0, atol=0)
        torch.testing.assert_close(ours[1], theirs[1], rtol=0, atol=0)
        mixed_any |= not torch.equal(ours[0], images)
    assert mixed_any


def test_an_odd_batch_mixes_all_but_its_last_image():
    images, targets = _batch(7)
    np.random.seed(3)
    mixed, soft = BatchMixing(MixingConfig(mixup=1.0), CLASSES)(images.clone(), targets)
    np.random.seed(3)
    reference, reference_soft = _timm(MixingConfig(mixup=1.0))(images[:6].clone(), targets[:6])
    assert torch.equal(mixed[:6], reference) and torch.equal(soft[:6], reference_soft)
    assert torch.equal(mixed[6], images[6]) and torch.equal(soft[6], F.one_hot(targets[6], CLASSES).float())


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_ce_on_mixed_targets_equals_timms_soft_target_cross_entropy(smoothing):
    images, targets = _batch()
    logits = torch.randn(8, CLASSES, generator=torch.Generator().manual_seed(1))
    config = MixingConfig(mixup=0.8, cutmix=1.0)
    np.random.seed(0)
    _, soft = BatchMixing(config, CLASSES)(images.clone(), targets)
    np.random.seed(0)
    _, smoothed = _timm(config, smoothing)(images.clone(), targets)  # timm smooths in the target, we in the loss
    ours = create_loss({"name": "ce", "label_smoothing": smoothing}, task="classification", num_classes=CLASSES)
    torch.testing.assert_close(ours(logits, soft), SoftTargetCrossEntropy()(logits, smoothed))


@pytest.mark.parametrize("loss", [{"name": "ce"}, {"name": "bce"}, {"name": "focal", "alpha": 0.5, "gamma": 2.0}])
def test_a_mixed_targets_loss_is_the_mix_of_the_two_labels_losses(loss):
    criterion = create_loss(loss, task="classification", num_classes=CLASSES)
    logits = torch.randn(8, CLASSES, generator=torch.Generator().manual_seed(2))
    a, b = _batch()[1], _batch()[1].flip(0)
    lam = 0.3
    soft = lam * F.one_hot(a, CLASSES).float() + (1 - lam) * F.one_hot(b, CLASSES).float()
    torch.testing.assert_close(criterion(logits, soft), lam * criterion(logits, a) + (1 - lam) * criterion(logits, b))
    torch.testing.assert_close(criterion(logits, F.one_hot(a, CLASSES).float()), criterion(logits, a))


def _config(**changes) -> TrainConfig:
    values = dict(model="timm/test_resnet", epochs=2, lr=0.01, data=DataConfig(dataset="digits", image_size=16),
                  batch_size=128, mixup=0.8, cutmix=1.0, loss={"name": "focal", "alpha": 1.0, "gamma": 1.0})
    return TrainConfig(**{**values, **changes})


def test_a_run_mixes_each_batch_anew_repeats_with_its_seed_and_resumes_to_the_same_end():
    run = TrainingRun(_config())
    images, targets = next(iter(run.train_loader.batches(run.device, run.memory_format, run.augment_generator)))
    draws = [run.mixing(images.clone(), targets)[1] for _ in range(3)]
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[1], draws[2])
    again = TrainingRun(_config())  # the same seed: the same draws
    assert torch.equal(again.mixing(images.clone(), targets)[1], draws[0])

    first = again.run_epoch()
    saved = copy.deepcopy(again.state_dict())
    last = again.run_epoch()
    resumed = TrainingRun(_config())
    resumed.load_state_dict(saved)
    assert resumed.run_epoch()["train_loss"] == last["train_loss"]
    plain = TrainingRun(_config(mixup=0.0, cutmix=0.0))
    assert plain.mixing is None and plain.run_epoch()["train_loss"] != first["train_loss"]


def test_a_run_refuses_to_mix_segmentation_masks():
    config = TrainConfig(model="smp/Unet", encoder="test_resnet", data=DataConfig(dataset="shapes", image_size=16,
                                                                                  task="segmentation"),
                         loss={"name": "ce"}, mixup=0.8)
    with pytest.raises(ValueError, match="classification only, not segmentation"):
        TrainingRun(config)
