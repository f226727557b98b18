"""``folder``: your own images on disk.

Classification uses the ImageFolder layout, class names from the training folder::

    train_dir/<class>/<image>.jpg     val_dir/<class>/<image>.jpg

Segmentation pairs images with masks by file stem; a mask pixel's value is its
class index (0 background), and 0/255 masks read as 0/1::

    train_dir/images/<stem>.jpg       train_dir/masks/<stem>.png

Without ``val_dir``, a fixed ``val_fraction`` of ``train_dir`` validates. Datasets hold
file lists, not pixels, so they pickle small; images are read as items are.

Example:
    >>> bundle = build_folder(DataConfig(dataset="folder", train_dir="data/pets/train"))  # doctest: +SKIP
    >>> bundle.class_names  # doctest: +SKIP
    ('cat', 'dog')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ._base import DataBundle, DataConfig, random_split, stratified_split
from ._transforms import PairTransform, timm_transform

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")  # lossless only: JPEG would smear class indices
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # as timm.data.IMAGENET_DEFAULT_MEAN, without importing timm here
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_rgb(path: str) -> Image.Image:
    """Open an image as RGB (grayscale, palette and RGBA images too)."""
    with Image.open(path) as image:
        return image.convert("RGB")


def load_mask(path: str) -> np.ndarray:
    """A mask file as a ``[H, W]`` uint8 array of raw pixel values.

    Palette (P) masks give their palette indices, as VOC-style masks expect.
    """
    with Image.open(path) as mask:
        if mask.mode in ("L", "P", "1"):
            return np.asarray(mask).astype(np.uint8)
        if mask.mode.startswith("I"):
            values = np.asarray(mask)
            if values.max(initial=0) > 255 or values.min(initial=0) < 0:
                raise ValueError(f"mask {path}: values must lie in 0..255, got {values.min()}..{values.max()}")
            return values.astype(np.uint8)
        if mask.mode in ("RGB", "RGBA", "LA"):
            rgb = np.asarray(mask.convert("RGB"))
            if (rgb == rgb[..., :1]).all():  # a grey image saved as RGB
                return np.ascontiguousarray(rgb[..., 0])
        raise ValueError(f"mask {path} is a {mask.mode} colour image; a mask holds one class index per pixel "
                         f"(a single-channel L or P image)")


# ------------------------------------------------------------ classification
class FolderImages(Dataset):
    """Image files with class indices, read and transformed per item.

    Args:
        samples: ``(path, class index)`` pairs.
        transform: Turns a PIL image into a float ``[C, H, W]`` tensor.
    """

    def __init__(self, samples: list[tuple[str, int]], transform: Any) -> None:
        self.samples = samples
        self.transform = transform

    @property
    def targets(self) -> list[int]:
        return [target for _, target in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path, target = self.samples[index]
        return self.transform(load_rgb(path)), torch.tensor(target)


def _directory(path: str | None, field: str) -> Path:
    if path is None:
        raise ValueError(f"data.{field} is required for dataset 'folder'")
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise ValueError(f"data.{field}: no such directory: {directory}")
    return directory


def _files(directory: Path, extensions: tuple[str, ...], recursive: bool = True) -> list[Path]:
    found = directory.rglob("*") if recursive else directory.iterdir()
    # hidden files and folders (.DS_Store, .ipynb_checkpoints/) are never data
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in extensions
                  and not any(part.startswith(".") for part in p.relative_to(directory).parts))


def scan_classes(directory: Path, field: str) -> dict[str, list[Path]]:
    """Class name -> its image files, for an ImageFolder layout; every class must have one."""
    classes = sorted(d.name for d in directory.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"data.{field}: {directory} is empty: it holds no class folders "
                         f"(ImageFolder layout: {directory}/<class>/<image>.jpg)")
    files = {name: _files(directory / name, IMAGE_EXTENSIONS) for name in classes}
    for name, paths in files.items():
        if not paths:
            raise ValueError(f"data.{field}: class folder {directory / name} holds no images "
                             f"({', '.join(IMAGE_EXTENSIONS)})")
    return files


def _classification(config: DataConfig, mean: tuple[float, ...], std: tuple[float, ...]) -> DataBundle:
    train_root = _directory(config.train_dir, "train_dir")
    train_files = scan_classes(train_root, "train_dir")
    class_names = tuple(train_files)
    index = {name: i for i, name in enumerate(class_names)}
    train = [(str(p), index[name]) for name, paths in train_files.items() for p in paths]
    if config.val_dir is not None:
        val_root = _directory(config.val_dir, "val_dir")
        val_files = scan_classes(val_root, "val_dir")
        unknown = sorted(set(val_files) - set(index))
        if unknown:
            raise ValueError(f"data.val_dir: class folders {unknown} in {val_root} are not among the training classes "
                             f"in {train_root}: {', '.join(class_names)}")
        val = [(str(p), index[name]) for name, paths in val_files.items() for p in paths]
    else:
        train_idx, val_idx = _split(np.array([t for _, t in train]), config, stratify=True)
        train, val = [train[i] for i in train_idx], [train[i] for i in val_idx]

    def transform(is_train: bool) -> Any:
        return timm_transform(config.image_size, train=is_train, hflip=config.hflip, scale=config.scale,
                              mean=mean, std=std)

    return DataBundle(
        train=FolderImages(train, transform(True)),
        val=FolderImages(val, transform(False)),
        num_classes=len(class_names),
        in_chans=3,
        class_names=class_names,
    )


def _split(labels: np.ndarray, config: DataConfig, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    if len(labels) < 2:
        raise ValueError(f"data.train_dir: {config.train_dir} holds {len(labels)} image; splitting off a validation "
                         f"set needs at least 2 (or set data.val_dir)")
    if stratify:
        return stratified_split(labels, config.val_fraction, config.split_seed)
    return random_split(len(labels), config.val_fraction, config.split_seed)


# -------------------------------------------------------------- segmentation
class FolderMasks(Dataset):
    """Image files with mask files, read and transformed together per item.

    Args:
        pairs: ``(image path, mask path)`` pairs.
        lut: 256 entries: raw mask value -> class index (maps 255 to 1, or merges classes).
        transform: Joint augmentation, resizing and normalization.
    """

    def __init__(self, pairs: list[tuple[str, str]], lut: np.ndarray, transform: PairTransform) -> None:
        self.pairs = pairs
        self.lut = lut
        self.transform = transform

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, mask_path = self.pairs[index]
        image = torch.from_numpy(np.array(load_rgb(image_path))).permute(2, 0, 1)  # [3, H, W] uint8
        mask = torch.from_numpy(self.lut[load_mask(mask_path)])
        image, mask = self.transform(image, mask)
        return image, mask.long()


def _stems(directory: Path, extensions: tuple[str, ...], field: str) -> dict[str, Path]:
    stems: dict[str, Path] = {}
    for path in _files(directory, extensions, recursive=False):
        if path.stem in stems:
            raise ValueError(f"data.{field}: {stems[path.stem]} and {path} share the stem {path.stem!r}; "
                             f"images and masks pair up by stem")
        stems[path.stem] = path
    return stems


def scan_pairs(directory: Path, field: str) -> list[tuple[str, str]]:
    """``(image, mask)`` paths of a segmentation layout; every image needs a mask and vice versa."""
    images_dir, masks_dir = directory / "images", directory / "masks"
    for sub in (images_dir, masks_dir):
        if not sub.is_dir():
            raise ValueError(f"data.{field}: no folder {sub} (segmentation layout: {directory}/images/<stem>.jpg "
                             f"and {directory}/masks/<stem>.png)")
    images = _stems(images_dir, IMAGE_EXTENSIONS, field)
    masks = _stems(masks_dir, MASK_EXTENSIONS, field)
    if not images:
        raise ValueError(f"data.{field}: {images_dir} is empty: it holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    for stem, path in images.items():
        if stem not in masks:
            raise ValueError(f"data.{field}: image {path} has no mask (expected {masks_dir / stem}.png)")
    for stem, path in masks.items():
        if stem not in images:
            raise ValueError(f"data.{field}: mask {path} has no image in {images_dir}")
    return [(str(images[stem]), str(masks[stem])) for stem in sorted(images)]


def _mask_values(pairs: list[tuple[str, str]]) -> set[int]:
    # One pass over the masks at build time: class count, 0/255 detection, size checks.
    values: set[int] = set()
    for image_path, mask_path in pairs:
        mask = load_mask(mask_path)
        with Image.open(image_path) as image:  # reads the header only
            width, height = image.size
        if mask.shape != (height, width):
            raise ValueError(f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but image {image_path} is "
                             f"{width}x{height}")
        values.update(np.unique(mask).tolist())
    return values


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


def _segmentation(config: DataConfig, mean: tuple[float, ...], std: tuple[float, ...]) -> DataBundle:
    train = scan_pairs(_directory(config.train_dir, "train_dir"), "train_dir")
    if config.val_dir is not None:
        val = scan_pairs(_directory(config.val_dir, "val_dir"), "val_dir")
    else:
        train_idx, val_idx = _split(np.zeros(len(train)), config, stratify=False)
        train, val = [train[i] for i in train_idx], [train[i] for i in val_idx]
    lut, num_classes = mask_lut(_mask_values(train), _mask_values(val), config.binary)

    def part(pairs: list[tuple[str, str]], is_train: bool) -> FolderMasks:
        transform = PairTransform(config.image_size, mean=mean, std=std, train=is_train, hflip=config.hflip,
                                  scale=config.scale)
        return FolderMasks(pairs, lut, transform)

    names = ("background", "foreground") if num_classes == 2 else ("background",) + tuple(
        f"class_{k}" for k in range(1, num_classes))
    return DataBundle(
        train=part(train, True),
        val=part(val, False),
        num_classes=num_classes,
        in_chans=3,
        class_names=names,
        task="segmentation",
    )


def build_folder(config: DataConfig) -> DataBundle:
    """Classification or segmentation data from ``config.train_dir`` (and ``val_dir``)."""
    mean, std = config.norm(IMAGENET_MEAN, IMAGENET_STD)
    if config.task == "segmentation":
        return _segmentation(config, mean, std)
    return _classification(config, mean, std)
