"""A folder of real photographs to try the folder pipeline on: crops of scikit-learn's sample images.

scikit-learn ships two photographs (``china.jpg`` and ``flower.jpg``, 640x427). Random
crops of them, saved as JPEG, make an ImageFolder with two classes; for segmentation, a
crop of one with an ellipse of the other pasted in, and the ellipse as the exact mask.
Tests and the input-pipeline benchmark use it; no download is needed.

Example:
    >>> root = write_sample_photos("/tmp/photos", count=40)  # doctest: +SKIP
    >>> sorted(p.name for p in (root / "train").iterdir())  # doctest: +SKIP
    ['china', 'flower']
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("china", "flower")


def _sources() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    return [np.asarray(image) for image in load_sample_images().images]  # [427, 640, 3] uint8 each


def _crop(rng: np.random.Generator, source: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    top = rng.integers(0, source.shape[0] - height + 1)
    left = rng.integers(0, source.shape[1] - width + 1)
    crop = source[top:top + height, left:left + width]
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def write_sample_photos(root: str | Path, count: int = 2000, *, size: tuple[int, int] = (500, 375),
                        task: str = "classification", val_fraction: float = 0.2, seed: int = 0,
                        quality: int = 90) -> Path:
    """Write ``count`` photos (``size`` = width, height) under ``root/train`` and ``root/val``.

    Classification: ``<split>/<china|flower>/<i>.jpg``, classes alternating. Segmentation:
    ``<split>/images/<i>.jpg`` and ``<split>/masks/<i>.png`` (0 background, 1 the ellipse).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    sources = _sources()
    n_val = max(1, round(count * val_fraction))
    for i in range(count):
        split = "val" if i < n_val else "train"
        if task == "classification":
            label = i % len(CLASSES)
            path = root / split / CLASSES[label] / f"{i:05d}.jpg"
            image = _crop(rng, sources[label], size)
        else:
            image, mask = _pasted(rng, sources, size)
            path = root / split / "images" / f"{i:05d}.jpg"
            (root / split / "masks").mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(root / split / "masks" / f"{i:05d}.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(image)).save(path, quality=quality)
    return root


def _pasted(rng: np.random.Generator, sources: list[np.ndarray], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A crop of one photo with an ellipse cut from the other; the mask marks the ellipse."""
    first = int(rng.integers(0, 2))
    background = _crop(rng, sources[first], size).copy()
    patch = _crop(rng, sources[1 - first], size)
    width, height = size
    cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
    ry, rx = rng.uniform(0.15, 0.3) * height, rng.uniform(0.15, 0.3) * width
    y, x = np.mgrid[0:height, 0:width] + 0.5
    inside = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0
    background[inside] = patch[inside]
    return background, inside.astype(np.uint8)
