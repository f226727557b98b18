"""What every dataset shares: the config it is built from and the bundle it returns."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset

HALF = (0.5, 0.5, 0.5)  # maps [0, 1] to [-1, 1]: the built-in datasets' default mean and std
DEFAULT_CROP_PCT = 0.875  # timm's default: validation keeps the centre 87.5% of the resized image
CACHE_MODES = ("auto", "off")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "lanczos")


def _floats(value: Any, field: str, length: int) -> tuple[float, ...]:
    # YAML and timm's pretrained configs hand over lists; a frozen config wants tuples.
    try:
        values = tuple(float(v) for v in value)
    except TypeError:
        raise ValueError(f"data.{field} must be a list of {length} numbers, got {value!r}") from None
    if len(values) != length:
        raise ValueError(f"data.{field} must hold {length} numbers, got {len(values)}: {value!r}")
    return values


def scale_problem(scale: Sequence[float] | None) -> str | None:
    """What is wrong with ``data.scale``, RandomResizedCrop's area range ``[low, high]``; None if nothing.

    The one check of it: the spec reports the problem at ``data.scale``, :class:`DataConfig` raises it.

    Example:
        >>> scale_problem([0.9, 0.1])
        'must be [low, high] with 0 < low <= high <= 1, got [0.9, 0.1]'
    """
    if scale is None:
        return None
    low, high = scale
    return None if 0 < low <= high <= 1 else f"must be [low, high] with 0 < low <= high <= 1, got {list(scale)}"


@dataclass(frozen=True)
class DataConfig:
    """The data part of a trial's config: what to read, how to augment it, how to load it.

    Augmentation (``hflip``, ``scale``) applies to training images only, and to their
    masks with them. ``mean``/``std`` of None mean the dataset's own default. The
    spec's ``data:`` section maps onto these fields one to one (``batch_size`` aside,
    a searchable knob of the trial).

    Example:
        >>> DataConfig(dataset="shapes", task="segmentation", image_size=64, hflip=True).scale is None
        True
    """

    dataset: str = "digits"
    task: str = "classification"
    image_size: int = 32
    train_dir: str | None = None
    val_dir: str | None = None
    num_workers: int = 0  # DataLoader worker processes per trial; 0 reads in the training loop
    binary: bool = False  # segmentation: every foreground class becomes class 1
    hflip: bool = False  # random horizontal flip of training images (and masks)
    scale: tuple[float, float] | None = None  # RandomResizedCrop area range; None: plain resize
    crop_pct: float | None = None  # folder: validation keeps this centre share; None: 0.875 (the model's, via the engine)
    interpolation: str | None = None  # folder: how images are resized to the square; None: the model's, or bilinear
    cache: str = "auto"  # folder: auto (decode once into a memory-mapped cache if the disk has room) | off
    cache_dir: str | None = None  # folder: where caches live; None: $TUNE_APP_CACHE/images or ~/.cache/tune-app/images
    cache_max_gb: float = 50.0  # folder: older caches are removed beyond this total
    skip_bad_images: bool = False  # folder: leave unreadable images out (counted) instead of stopping
    val_fraction: float = 0.2  # used where there is no separate validation set
    split_seed: int = 0  # fixes the split (and the generated images): same for every trial
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, numbers.Integral) or self.image_size < 1:
            raise ValueError(f"data.image_size must be a positive integer, got {self.image_size!r}")
        object.__setattr__(self, "image_size", int(self.image_size))
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must lie in (0, 1), got {self.val_fraction!r}")
        if self.scale is not None:
            scale = _floats(self.scale, "scale", 2)
            if problem := scale_problem(scale):
                raise ValueError(f"data.scale: {problem}")
            object.__setattr__(self, "scale", scale)
        for field in ("mean", "std"):
            value = getattr(self, field)
            if value is not None:
                object.__setattr__(self, field, _floats(value, field, 3))
        if self.std is not None and min(self.std) <= 0:
            raise ValueError(f"data.std must be positive, got {self.std}")
        if self.crop_pct is not None and not 0.0 < self.crop_pct <= 1.0:
            raise ValueError(f"data.crop_pct must lie in (0, 1], got {self.crop_pct!r}")
        if self.cache not in CACHE_MODES:
            raise ValueError(f"data.cache must be one of {', '.join(CACHE_MODES)}, got {self.cache!r}")
        if self.interpolation is not None and self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"data.interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")

    @property
    def resize(self) -> str:
        """The interpolation images are resized with."""
        return self.interpolation or "bilinear"

    def norm(self, default_mean: Sequence[float], default_std: Sequence[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The normalization to use: this config's, else the dataset's default."""
        return tuple(self.mean or default_mean), tuple(self.std or default_std)


@dataclass
class DataBundle:
    """Train and validation sets plus what the model factory needs to know.

    Items are ``(image, target)``: a float ``[C, H, W]`` image and a long class index
    (classification) or a long ``[H, W]`` mask of class indices (segmentation).
    ``config`` is the data config the sets were built from: for a trial's data, completed
    for its model (crop_pct, interpolation, the weights' normalization), so what a
    checkpoint or an exported model records is what the data was built with.
    """

    train: Dataset
    val: Dataset
    num_classes: int  # segmentation: background included
    in_chans: int
    class_names: tuple[str, ...]  # segmentation: background first
    task: str = "classification"
    notes: tuple[str, ...] = ()  # how the data is read (cache or per item, and why), for the terminal
    skipped: tuple[str, ...] = ()  # unreadable images left out (data.skip_bad_images)
    ignored: tuple[str, ...] = ()  # files in a folder dataset's folders that are not images
    config: DataConfig | None = None  # what it was built from (build_data sets it); None: a bundle made by hand


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry: how to build a dataset and what it can be used for."""

    build: Callable[[DataConfig], DataBundle]
    tasks: tuple[str, ...]
    mean: tuple[float, ...] = HALF  # the default normalization
    std: tuple[float, ...] = HALF
    framed: bool = False  # images are resized and centre-cropped (crop_pct), not stored at image_size
    help: str = ""


def random_split(count: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and validation indices of a seeded random split (at least one of each)."""
    order = np.random.default_rng(seed).permutation(count)
    n_val = min(max(round(count * val_fraction), 1), count - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and validation indices with each class in both in proportion.

    Falls back to :func:`random_split` where a class is too small to stratify.
    """
    # A fixed split, independent of the trial seed: every trial is judged on the same images.
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    try:
        train_idx, val_idx = train_test_split(indices, test_size=val_fraction, stratify=labels, random_state=seed)
    except ValueError:
        return random_split(len(labels), val_fraction, seed)
    return np.sort(train_idx), np.sort(val_idx)
