"""The built-in digits, held in memory.

Example:
    >>> bundle = build_digits(DataConfig(image_size=16))
    >>> bundle.num_classes, len(bundle.train) + len(bundle.val)
    (10, 1797)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ._arrays import ArrayDataset
from ._augment import BatchTransform
from ._base import HALF, DataBundle, DataConfig, stratified_split


def build_digits(config: DataConfig) -> DataBundle:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes), stored at ``image_size``.

    One grey channel in [0, 1] (float32: the bilinear upscale keeps its fractions), repeated
    to three as batches are read, so memory stays one channel while models see RGB.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]  # [N, 1, 8, 8] in [0, 1]
    images = F.interpolate(images, size=(config.image_size, config.image_size), mode="bilinear", align_corners=False)
    images = images.permute(0, 2, 3, 1).numpy()  # [N, S, S, 1]: stored channels last, as every dataset
    labels = digits.target.astype(np.int64)
    train_idx, val_idx = stratified_split(digits.target, config.val_fraction, config.split_seed)
    mean, std = config.norm(HALF, HALF)

    def part(rows: np.ndarray, train: bool) -> ArrayDataset:
        transform = BatchTransform(config.image_size, mean=mean, std=std, train=train, hflip=config.hflip,
                                   scale=config.scale)
        return ArrayDataset(np.ascontiguousarray(images[rows]), labels[rows], transform)

    return DataBundle(
        train=part(train_idx, True),
        val=part(val_idx, False),
        num_classes=10,
        in_chans=3,
        class_names=tuple(str(d) for d in range(10)),
    )
