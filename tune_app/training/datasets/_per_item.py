"""Folder images read per item (``data.cache: off``): decoded, framed and augmented as each item is read.

For data larger than the local disk. Each image is framed exactly as the cache stores
it (:func:`~.imaging.decode`, :func:`~.imaging.frame`) and transformed by the same batch transform, on a batch of
one, so the two paths differ in speed only. Datasets hold file lists, not pixels: they
pickle small, and DataLoader worker processes (``data.num_workers``) can read them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ._augment import BatchTransform
from .imaging import decode, frame, load_mask, square_mask, upright_size


class FolderItems(Dataset):
    """Image files with class labels or mask files, read per item.

    Args:
        images: Image paths.
        labels: Class index per image (classification), or None.
        masks: Mask path per image (segmentation), or None.
        side: The stored square's side (see :func:`~._cache.stored_side`).
        crop: The validation crop the square centres.
        interpolation: PIL resampling of the resize.
        transform: The split's batch transform.
        lut: For masks: 256 entries, raw value -> class index.
    """

    def __init__(self, images: Sequence[str], labels: Sequence[int] | None, masks: Sequence[str] | None, side: int,
                 crop: int, interpolation: str, transform: BatchTransform, lut: np.ndarray | None = None) -> None:
        self.image_paths = list(images)
        self.labels = None if labels is None else list(labels)
        self.mask_paths = None if masks is None else list(masks)
        self.side = side
        self.crop = crop
        self.interpolation = interpolation
        self.transform = transform
        self.lut = lut

    @property
    def targets(self) -> list[int]:
        return list(self.labels or [])

    @property
    def samples(self) -> list[tuple[str, int]]:
        return list(zip(self.image_paths, self.targets))

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(zip(self.image_paths, self.mask_paths or []))

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        decoded = decode(self.image_paths[index], self.side)
        image = np.array(frame(decoded, self.side, self.interpolation, self.crop))
        if self.mask_paths is None:
            out, _ = self.transform.gather(image[None], np.array([0]))
            return out[0], torch.tensor(self.labels[index])  # type: ignore[index]
        mask = square_mask(load_mask(self.mask_paths[index]), self.side, self.crop)
        out, masks = self.transform.gather(image[None], np.array([0]), mask[None], self.lut)
        return out[0], masks[0].long()  # type: ignore[index]


def unreadable(paths: Sequence[str], side: int | None = None) -> dict[str, str]:
    """Path -> reason for each file that cannot be decoded as training will decode it (at ``side``).

    One decode each: truncation shows only then.
    """
    bad = {}
    for path in paths:
        try:
            decode(path, side)
        except Exception as exc:  # PIL raises many kinds for truncated or foreign files
            bad[path] = f"{type(exc).__name__}: {exc}"[:300]
    return bad


def mask_values(pairs: Sequence[tuple[str, str]]) -> list[list[int]]:
    """Each mask's raw values, checking that it has its image's size (one pass at build time)."""
    values = []
    for image_path, mask_path in pairs:
        mask = load_mask(mask_path)
        width, height = upright_size(image_path)  # from the header
        if mask.shape != (height, width):
            raise ValueError(f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but image {image_path} is "
                             f"{width}x{height} (upright)")
        values.append(np.unique(mask).tolist())
    return values
