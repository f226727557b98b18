"""Finding a folder dataset's files: ImageFolder classes, or images/ and masks/ paired by stem.

Classification uses the ImageFolder layout, class names from the training folder::

    train_dir/<class>/<image>.jpg     val_dir/<class>/<image>.jpg

Segmentation pairs images with masks by file stem; a mask pixel's value is its
class index (0 background), and 0/255 masks read as 0/1::

    train_dir/images/<stem>.jpg       train_dir/masks/<stem>.png

Without ``val_dir``, a fixed ``val_fraction`` of ``train_dir`` validates. Files there
that are not images (by extension: :data:`~.imaging.IMAGE_EXTENSIONS`) are ignored and
listed; HEIC/HEIF images without pillow-heif are an error naming the extra to install.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import DataConfig, random_split, stratified_split
from .imaging import IMAGE_EXTENSIONS, missing_plugin

MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")  # lossless only: JPEG would smear class indices


def folder_at(path: str | None, field: str) -> Path:
    if path is None:
        raise ValueError(f"data.{field} is required for dataset 'folder'")
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise ValueError(f"data.{field}: no such directory: {directory}")
    return directory


def _files(directory: Path, extensions: tuple[str, ...], recursive: bool = True) -> tuple[list[Path], list[Path]]:
    """The files under ``directory`` with one of ``extensions``, and the other files (ignored, but listed)."""
    found = directory.rglob("*") if recursive else directory.iterdir()
    # hidden files and folders (.DS_Store, .ipynb_checkpoints/) are never data, nor worth a mention
    visible = sorted(p for p in found if p.is_file()
                     and not any(part.startswith(".") for part in p.relative_to(directory).parts))
    return ([p for p in visible if p.suffix.lower() in extensions],
            [p for p in visible if p.suffix.lower() not in extensions])


def _check_plugins(paths: list[Path], field: str) -> None:
    problem = missing_plugin(paths)
    if problem:
        raise ValueError(f"data.{field}: {problem}")


def scan_classes(directory: Path, field: str) -> tuple[dict[str, list[Path]], list[Path]]:
    """Class name -> its image files, for an ImageFolder layout (every class must have one), and the
    files in the class folders that are not images."""
    classes = sorted(d.name for d in directory.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"data.{field}: {directory} is empty: it holds no class folders "
                         f"(ImageFolder layout: {directory}/<class>/<image>.jpg)")
    files, ignored = {}, []
    for name in classes:
        files[name], others = _files(directory / name, IMAGE_EXTENSIONS)
        ignored += others
        if not files[name]:
            besides = f"; it holds {len(others)} other files, e.g. {others[0].name}" if others else ""
            raise ValueError(f"data.{field}: class folder {directory / name} holds no images "
                             f"({', '.join(IMAGE_EXTENSIONS)}){besides}")
    _check_plugins([p for paths in files.values() for p in paths], field)
    return files, ignored


def split(labels: np.ndarray, config: DataConfig, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    if len(labels) < 2:
        raise ValueError(f"data.train_dir: {config.train_dir} holds {len(labels)} image; splitting off a validation "
                         f"set needs at least 2 (or set data.val_dir)")
    if stratify:
        return stratified_split(labels, config.val_fraction, config.split_seed)
    return random_split(len(labels), config.val_fraction, config.split_seed)


def _stems(directory: Path, extensions: tuple[str, ...], field: str) -> tuple[dict[str, Path], list[Path]]:
    stems: dict[str, Path] = {}
    found, others = _files(directory, extensions, recursive=False)
    for path in found:
        if path.stem in stems:
            raise ValueError(f"data.{field}: {stems[path.stem]} and {path} share the stem {path.stem!r}; "
                             f"images and masks pair up by stem")
        stems[path.stem] = path
    return stems, others


def scan_pairs(directory: Path, field: str) -> tuple[list[tuple[str, str]], list[Path]]:
    """``(image, mask)`` paths of a segmentation layout (every image needs a mask and vice versa), and the
    files in ``images/`` and ``masks/`` that are neither."""
    images_dir, masks_dir = directory / "images", directory / "masks"
    for sub in (images_dir, masks_dir):
        if not sub.is_dir():
            raise ValueError(f"data.{field}: no folder {sub} (segmentation layout: {directory}/images/<stem>.jpg "
                             f"and {directory}/masks/<stem>.png)")
    images, ignored = _stems(images_dir, IMAGE_EXTENSIONS, field)
    masks, other_masks = _stems(masks_dir, MASK_EXTENSIONS, field)
    if not images:
        raise ValueError(f"data.{field}: {images_dir} is empty: it holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    _check_plugins(list(images.values()), field)
    for stem, path in images.items():
        if stem not in masks:
            raise ValueError(f"data.{field}: image {path} has no mask (expected {masks_dir / stem}.png)")
    for stem, path in masks.items():
        if stem not in images:
            raise ValueError(f"data.{field}: mask {path} has no image in {images_dir}")
    return [(str(images[stem]), str(masks[stem])) for stem in sorted(images)], ignored + other_masks


def mask_lut(train_values: set[int], val_values: set[int], binary: bool) -> tuple[np.ndarray, int]:
    """The raw value -> class lookup table and the class count (background included).

    Example:
        >>> lut, num_classes = mask_lut({0, 255}, {0, 255}, binary=False)
        >>> int(lut[255]), num_classes
        (1, 2)
    """
    lut = np.arange(256, dtype=np.uint8)
    values = train_values | val_values
    if binary:
        lut = (lut > 0).astype(np.uint8)
    elif values <= {0, 255}:
        lut[255] = 1  # black/white masks: white is the foreground
    elif 255 in values:
        field = "train_dir" if 255 in train_values else "val_dir"
        raise ValueError(f"data.{field}: masks hold 255 alongside other classes {sorted(values - {0, 255})[:10]}; "
                         f"255 reads as foreground only in 0/255 masks (ignore labels are not supported)")
    num_classes = int(lut[max(train_values)]) + 1
    if num_classes < 2:
        raise ValueError("data.train_dir: every training mask is all background (0); nothing to segment")
    unseen = sorted(v for v in val_values if lut[v] >= num_classes)
    if unseen:
        raise ValueError(f"data.val_dir: masks hold classes {unseen} that no training mask holds "
                         f"(training classes: 0..{num_classes - 1})")
    return lut, num_classes
