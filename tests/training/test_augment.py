"""Batch augmentation: the draws follow data.scale and data.hflip, masks stay class indices.

Every behaviour is checked on both ways of applying a batch's draws: the batched one a
GPU runs (``BatchTransform.__call__``, here on the CPU's tensors) and the image-by-image
cut from the stored array that CPU trials run (``BatchTransform.gather``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tune_app.training.datasets import BatchTransform, sample_boxes

PLAIN = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def apply(how: str, transform: BatchTransform, images: np.ndarray, masks: np.ndarray | None = None,
          seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``images`` ``[N, S, S, C]`` through the batched path or the per-image gather."""
    if how == "batch":
        return transform(torch.from_numpy(images), None if masks is None else torch.from_numpy(masks),
                         generator(seed))
    return transform.gather(images, np.arange(len(images)), masks, None, generator(seed))


HOW = ["batch", "gather"]


@pytest.mark.parametrize("scale", [(0.08, 1.0), (0.3, 0.5), (0.9, 1.0)])
def test_crop_boxes_follow_the_scale_and_ratio_ranges(scale):
    side = 200
    boxes = sample_boxes(4000, side, scale, generator())
    top, left, height, width = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + height <= side).all() and (left + width <= side).all()
    share = height * width / side ** 2
    slack = 4 / side  # rounding each side to whole pixels
    assert share.min() >= scale[0] - slack and share.max() <= scale[1] + slack
    ratio = (width / height).log()
    assert (ratio.abs() <= math.log(4 / 3) + 0.02).float().mean() > 0.99
    # the draws cover the range rather than sit at one end
    assert share.quantile(0.1) < scale[0] + 0.25 * (scale[1] - scale[0])
    assert share.quantile(0.9) > scale[1] - 0.25 * (scale[1] - scale[0])


def test_boxes_are_reproducible_from_the_generator():
    assert torch.equal(sample_boxes(50, 64, (0.2, 1.0), generator(3)), sample_boxes(50, 64, (0.2, 1.0), generator(3)))
    assert not torch.equal(sample_boxes(50, 64, (0.2, 1.0), generator(3)),
                           sample_boxes(50, 64, (0.2, 1.0), generator(4)))


def halves(count: int, side: int) -> np.ndarray:
    """Images whose left half is 255 and right half 0: a flip shows in the first column."""
    images = np.zeros((count, side, side, 3), np.uint8)
    images[:, :, : side // 2] = 255
    return images


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("scale", [None, (0.5, 1.0)])
def test_hflip_flips_about_half_of_the_training_batch_and_nothing_else(how, scale):
    images = halves(1000, 32)
    flipped = apply(how, BatchTransform(16, train=True, hflip=True, scale=scale, **PLAIN), images)[0]
    left_dark = flipped[:, 0, :, 0].mean(1) < 0.5
    assert 0.44 < left_dark.float().mean() < 0.56
    plain = apply(how, BatchTransform(16, train=True, hflip=False, scale=scale, **PLAIN), images)[0]
    assert (plain[:, 0, :, 0].mean(1) > 0.5).all()
    val = apply(how, BatchTransform(16, train=False, hflip=True, scale=scale, **PLAIN), images)[0]
    assert (val[:, 0, :, 0] == 1.0).all() and (val[:, 0, :, -1] == 0.0).all()


@pytest.mark.parametrize("how", HOW)
def test_random_resized_crops_differ_between_images_and_cover_the_crop_range(how):
    # a horizontal ramp: a crop's spread tells how wide it is, its mean where it sits
    side = 64
    ramp = np.broadcast_to(np.linspace(0, 255, side).round().astype(np.uint8)[None, None, :, None],
                           (500, side, side, 3)).copy()
    out = apply(how, BatchTransform(32, train=True, scale=(0.1, 1.0), **PLAIN), ramp)[0][:, 0]
    widths = out.amax((1, 2)) - out.amin((1, 2))
    assert widths.min() < 0.45 and widths.max() > 0.9  # narrow and wide crops
    assert out.mean((1, 2)).std() > 0.05  # at different places


def test_both_paths_draw_the_same_crops_and_flips():
    rng = np.random.default_rng(0)
    # smooth images: the two resamplers (grid_sample vs antialiased resize) then agree closely
    base = rng.integers(0, 255, (16, 4, 4, 3)).astype(np.float32)
    images = torch.nn.functional.interpolate(torch.from_numpy(base).permute(0, 3, 1, 2), size=(48, 48),
                                             mode="bilinear").permute(0, 2, 3, 1).round().to(torch.uint8).numpy()
    transform = BatchTransform(24, train=True, hflip=True, scale=(0.3, 1.0), **PLAIN)
    batched, _ = apply("batch", transform, images, seed=5)
    gathered, _ = apply("gather", transform, images, seed=5)
    assert (batched - gathered).abs().mean() < 0.02


@pytest.mark.parametrize("how", HOW)
def test_masks_move_with_their_images_and_keep_class_indices(how):
    side = 48
    images = halves(64, side)
    masks = np.zeros((64, side, side), np.uint8)
    masks[:, :, : side // 2] = 3  # the bright half is class 3
    out, out_masks = apply(how, BatchTransform(24, train=True, hflip=True, scale=(0.2, 1.0), **PLAIN), images, masks)
    assert out_masks.dtype == torch.uint8 and set(out_masks.unique().tolist()) <= {0, 3}
    bright, dark = out[:, 0] > 0.9, out[:, 0] < 0.1
    assert ((out_masks == 3) == bright)[bright | dark].float().mean() > 0.97  # edges interpolate


@pytest.mark.parametrize("how", HOW)
def test_validation_is_the_centre_crop_normalized(how):
    images = (np.arange(10 * 10, dtype=np.float32).reshape(1, 10, 10, 1).repeat(3, 3).repeat(2, 0) / 100)
    out, _ = apply(how, BatchTransform(6, train=False, mean=(0.5,) * 3, std=(0.25,) * 3), images)
    expected = (torch.from_numpy(images).permute(0, 3, 1, 2)[:, :, 2:8, 2:8] - 0.5) / 0.25
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("how", HOW)
def test_one_channel_images_are_repeated_to_three(how):
    out, _ = apply(how, BatchTransform(8, **PLAIN), np.full((2, 8, 8, 1), 255, np.uint8))
    assert out.shape == (2, 3, 8, 8) and (out == 1.0).all()
