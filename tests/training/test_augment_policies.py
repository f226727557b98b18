"""augment: torchvision's RandAugment / TrivialAugment / AutoAugment per image inside the batch transform."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from torchvision.transforms import v2

from tune_app.training import TrainConfig
from tune_app.training.augment_policies import AUGMENTS, augment_options, create_policy
from tune_app.training.datasets import DataConfig
from tune_app.training.datasets._augment import BatchTransform
from tune_app.training.engine import TrainingRun

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _squares(count: int = 6, side: int = 24) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    one = torch.randint(0, 256, (1, side, side, 3), dtype=torch.uint8, generator=generator)
    return one.expand(count, -1, -1, -1).contiguous()  # the same image throughout: differences are the draws'


def _transform(policy) -> BatchTransform:
    return BatchTransform(16, mean=MEAN, std=STD, train=True, policy=policy)


@pytest.mark.parametrize("name", [n for n in AUGMENTS if n != "none"])
def test_each_image_of_a_batch_draws_its_own_operations_and_the_draws_repeat_with_the_seed(name):
    transform = _transform(create_policy({"name": name}))
    torch.manual_seed(3)
    first, _ = transform(_squares(8))
    torch.manual_seed(3)
    again, _ = transform(_squares(8))
    assert torch.equal(first, again)
    assert len({tuple(image.flatten().tolist()) for image in first}) > 1  # not one draw for the whole batch


@pytest.mark.parametrize("on_cpu", [True, False], ids=["cut-on-cpu", "on-the-device"])
def test_the_batch_equals_torchvision_s_transform_applied_to_each_centre_crop_in_turn(on_cpu):
    squares = _squares(5)
    policy = create_policy({"name": "randaugment", "magnitude": 20, "num_ops": 3})
    torch.manual_seed(7)
    if on_cpu:
        ours, _ = _transform(policy).gather(squares.numpy(), torch.arange(5).numpy())
    else:
        ours, _ = _transform(policy)(squares)
    torch.manual_seed(7)
    reference = v2.RandAugment(num_ops=3, magnitude=20, num_magnitude_bins=31)
    crops = squares.permute(0, 3, 1, 2)[:, :, 4:20, 4:20]  # the centre 16 of 24
    expected = torch.stack([(reference(c).float() / 255 - 0.5) / 0.25 for c in crops])
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)


def test_none_leaves_the_batch_as_it_was_and_bad_options_name_what_is_allowed():
    assert create_policy("none") is None and create_policy({"name": "none"}) is None
    with pytest.raises(ValueError, match="unknown augment 'randaugmnt'.*randaugment"):
        augment_options("randaugmnt")
    with pytest.raises(ValueError, match="magnitude"):
        augment_options({"name": "randaugment", "magnitude": 31})


def _config(**changes) -> TrainConfig:
    values = dict(model="timm/test_resnet", epochs=2, lr=0.01, batch_size=128,
                  data=DataConfig(dataset="digits", image_size=16, scale=(0.5, 1.0), hflip=True),
                  augment={"name": "trivialaugment"})
    return TrainConfig(**{**values, **changes})


def test_a_run_augments_its_own_copy_of_the_shared_split_and_resumes_to_the_same_end():
    run = TrainingRun(_config())
    assert run.train_split is not run.data.train and run.data.train.transform.policy is None
    assert run.train_split.images is run.data.train.images  # the arrays stay shared
    run.run_epoch()
    saved = copy.deepcopy(run.state_dict())
    last = run.run_epoch()
    resumed = TrainingRun(_config(), data=run.data)
    resumed.load_state_dict(saved)
    assert resumed.run_epoch()["train_loss"] == last["train_loss"]
    plain = TrainingRun(_config(augment={"name": "none"}), data=run.data)
    assert plain.train_split is plain.data.train


def test_segmentation_is_refused_with_what_to_use_instead():
    config = TrainConfig(model="smp/Unet", encoder="test_resnet", loss={"name": "dice"},
                         data=DataConfig(dataset="shapes", task="segmentation", image_size=16),
                         augment={"name": "randaugment"})
    with pytest.raises(ValueError, match="augment 'randaugment' is for classification.*use augment none"):
        TrainingRun(config)


def test_a_trial_s_searched_flip_and_crop_range_replace_the_shared_split_s_for_it_alone():
    shared = _config(augment={"name": "none"})  # data: hflip, scale (0.5, 1.0)
    run = TrainingRun(shared)
    assert run.train_split is run.data.train  # as built: nothing of its own
    searched = dataclasses.replace(shared, data=dataclasses.replace(shared.data, hflip=False, scale=(0.08, 1.0)))
    trial = TrainingRun(searched, data=run.data)
    transform = trial.train_split.transform
    assert (transform.hflip, transform.scale, transform.policy) == (False, (0.08, 1.0), None)
    assert (run.data.train.transform.hflip, run.data.train.transform.scale) == (True, (0.5, 1.0))
    # the checkpoint's config keeps the trial's values, completed with the built framing
    assert (trial.config.data.hflip, trial.config.data.scale) == (False, (0.08, 1.0))
    assert trial.config.data.crop_pct == run.config.data.crop_pct is not None
