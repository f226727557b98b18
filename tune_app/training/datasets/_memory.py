"""Datasets held in memory, and the built-in digits.

Example:
    >>> bundle = build_digits(DataConfig(image_size=16))
    >>> bundle.num_classes, len(bundle.train) + len(bundle.val)
    (10, 1797)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ._base import DataBundle, DataConfig, HALF, stratified_split
from ._transforms import PairTransform


class ImageTensors(Dataset):
    """Images held in memory as one ``[N, C, H, W]`` tensor, with integer labels.

    Grayscale images are stored with one channel and expanded to ``channels`` on
    read: a view, so memory stays one channel while models see RGB. A ``transform``
    (a :class:`PairTransform`) augments and normalizes each image as it is read.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        channels: int = 3,
        transform: PairTransform | None = None,
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels
        self.channels = channels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        if self.transform is not None:
            image, _ = self.transform(image)
        return image.expand(self.channels, -1, -1), self.labels[index]


class ImageMasks(Dataset):
    """Segmentation images and masks held in memory as uint8 arrays.

    uint8 NumPy arrays pickle compactly and are shared zero-copy by Ray's object
    store; each item is copied out (the shared arrays are read-only) and converted.

    Args:
        images: ``[N, 3, H, W]`` uint8.
        masks: ``[N, H, W]`` uint8 class indices.
        transform: Augments, resizes and normalizes each pair.
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, transform: PairTransform) -> None:
        if images.shape[0] != masks.shape[0] or images.shape[2:] != masks.shape[1:]:
            raise ValueError(f"images {images.shape} and masks {masks.shape} do not match")
        self.images = images
        self.masks = masks
        self.transform = transform

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.from_numpy(np.array(self.images[index]))
        mask = torch.from_numpy(np.array(self.masks[index]))
        image, mask = self.transform(image, mask)
        return image, mask.long()


def build_digits(config: DataConfig) -> DataBundle:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]  # [N, 1, 8, 8] in [0, 1]
    images = F.interpolate(images, size=(config.image_size, config.image_size), mode="bilinear", align_corners=False)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    train_idx, val_idx = stratified_split(digits.target, config.val_fraction, config.split_seed)
    mean, std = config.norm(HALF, HALF)
    size = config.image_size

    def transform(train: bool) -> PairTransform:
        return PairTransform(size, mean=mean, std=std, train=train, hflip=config.hflip, scale=config.scale)

    return DataBundle(
        train=ImageTensors(images[train_idx].contiguous(), labels[train_idx], transform=transform(True)),
        val=ImageTensors(images[val_idx].contiguous(), labels[val_idx], transform=transform(False)),
        num_classes=10,
        in_chans=3,
        class_names=tuple(str(d) for d in range(10)),
    )
