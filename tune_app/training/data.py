"""Datasets: built-in ones that need no download, behind a small registry.

A :class:`DataBundle` is everything a trial needs from the data and nothing it can
rebuild cheaply: in a sweep the driver builds it once and Ray shares it with every
trial through the object store.

Example:
    >>> bundle = build_data(DataConfig(dataset="digits", image_size=16))
    >>> bundle.num_classes, len(bundle.train) + len(bundle.val)
    (10, 1797)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset


@dataclass(frozen=True)
class DataConfig:
    """The data part of a trial's config."""

    dataset: str = "digits"
    image_size: int = 32
    val_fraction: float = 0.2
    split_seed: int = 0


class ImageTensors(Dataset):
    """Images held in memory as one ``[N, C, H, W]`` float tensor, with integer labels.

    Grayscale images are stored with one channel and expanded to ``channels`` on
    read: a view, so memory stays one channel while models see RGB.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, channels: int = 3) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels
        self.channels = channels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        return image.expand(self.channels, -1, -1), self.labels[index]


@dataclass
class DataBundle:
    """Train and validation sets plus what the model factory needs to know."""

    train: Dataset
    val: Dataset
    num_classes: int
    in_chans: int
    class_names: tuple[str, ...]


def _stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # A fixed split, independent of the trial seed: every trial is judged on the same images.
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    train_idx, val_idx = train_test_split(indices, test_size=val_fraction, stratify=labels, random_state=seed)
    return np.sort(train_idx), np.sort(val_idx)


def _digits(config: DataConfig) -> DataBundle:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]  # [N, 1, 8, 8] in [0, 1]
    images = F.interpolate(images, size=(config.image_size, config.image_size), mode="bilinear", align_corners=False)
    images = (images - 0.5) / 0.5
    labels = torch.from_numpy(digits.target.astype(np.int64))
    train_idx, val_idx = _stratified_split(digits.target, config.val_fraction, config.split_seed)
    return DataBundle(
        train=ImageTensors(images[train_idx].contiguous(), labels[train_idx]),
        val=ImageTensors(images[val_idx].contiguous(), labels[val_idx]),
        num_classes=10,
        in_chans=3,
        class_names=tuple(str(d) for d in range(10)),
    )


DATASETS: dict[str, Callable[[DataConfig], DataBundle]] = {
    "digits": _digits,
}


def build_data(config: DataConfig) -> DataBundle:
    """Build the dataset named by ``config.dataset``."""
    factory = DATASETS.get(config.dataset)
    if factory is None:
        raise ValueError(f"unknown dataset {config.dataset!r}; known: {', '.join(DATASETS)}")
    return factory(config)
