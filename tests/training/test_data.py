"""The built-in digits dataset: real data, fixed stratified split, resized images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tune_app.training.data import DataConfig, build_data


def test_digits_has_every_image_once_with_a_stratified_split():
    bundle = build_data(DataConfig(dataset="digits", image_size=24))
    assert (len(bundle.train), len(bundle.val)) == (1437, 360)
    assert bundle.num_classes == 10 and bundle.in_chans == 3
    image, label = bundle.train[0]
    assert image.shape == (3, 24, 24) and image.dtype == torch.float32
    assert -1.0 <= image.min() and image.max() <= 1.0
    val_counts = np.bincount(bundle.val.labels.numpy(), minlength=10)
    assert val_counts.min() >= 35 and val_counts.max() <= 37  # 20% of each class's ~180 images


def test_the_split_does_not_depend_on_anything_but_its_seed():
    a = build_data(DataConfig(image_size=8))
    b = build_data(DataConfig(image_size=8))
    assert torch.equal(a.val.images, b.val.images) and torch.equal(a.train.labels, b.train.labels)


def test_unknown_dataset_is_an_error():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; known: digits"):
        build_data(DataConfig(dataset="mnist"))
