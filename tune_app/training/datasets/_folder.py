"""``folder``: your own images on disk, decoded once per node into a shared cache.

The layouts are ImageFolder class sub-folders (classification) or ``images/`` and
``masks/`` paired by stem (segmentation); see :mod:`._scan`. Every image is framed as a
square of side ``S = floor(image_size / crop_pct)`` (shorter side resized to ``S``, the
centre kept: timm's validation framing); validation sees its centre ``image_size`` crop, training a random
resized crop of it (``data.scale``) or the centre crop, flipped with ``data.hflip``.

``data.cache: auto`` (the default) decodes every image once into a memory-mapped uint8
file on the node's disk (:mod:`._cache`) when the disk has room, and says which it chose
and why; ``off`` reads and resizes each item as it is read (for data larger than the
disk). Unreadable images stop the build with their names, or with
``data.skip_bad_images`` are left out and counted. Files that are not images are
ignored and listed (``DataBundle.ignored``).

Example:
    >>> bundle = build_folder(DataConfig(dataset="folder", train_dir="data/pets/train"))  # doctest: +SKIP
    >>> bundle.class_names, bundle.notes  # doctest: +SKIP
    (('cat', 'dog'), ('data.cache: auto: caching 2000 images at 256x256 uint8 (375 MB) in ...',))
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._arrays import ArrayDataset
from ._augment import BatchTransform
from ._base import DEFAULT_CROP_PCT, DataBundle, DataConfig
from ._cache import BadImagesError, CachedArray, FolderCache, cache_root, default_echo, stored_side
from ._per_item import FolderItems, mask_values, unreadable
from ._scan import folder_at, mask_lut, scan_classes, scan_pairs, split

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # as timm.data.IMAGENET_DEFAULT_MEAN, without importing timm here
IMAGENET_STD = (0.229, 0.224, 0.225)
DISK_MARGIN = 2**30  # what the cache leaves free on its disk


@dataclass
class FolderFiles:
    """A folder dataset's files: training images first, then validation ones."""

    images: list[str]
    n_train: int
    roots: list[str]  # the folder each file is named relative to (train_dir or val_dir)
    labels: list[int] | None = None  # classification
    class_names: tuple[str, ...] = ()
    masks: list[str] | None = None  # segmentation
    ignored: list[str] = dataclasses.field(default_factory=list)  # files in the folders that are not images

    def field(self, row: int) -> str:
        return "data.train_dir" if row < self.n_train else "data.val_dir"

    def ignored_note(self) -> str | None:
        """A line naming the ignored files (count and the first few), for the terminal and data.json."""
        if not self.ignored:
            return None
        shown = ", ".join(self.ignored[:3]) + (f" and {len(self.ignored) - 3} more" if len(self.ignored) > 3 else "")
        return (f"data: ignored {len(self.ignored)} file{'s' * (len(self.ignored) != 1)} that "
                f"{'are' if len(self.ignored) != 1 else 'is'} not an image (by extension): {shown}")


def scan_folder(config: DataConfig) -> FolderFiles:
    """The files of ``config``'s folders, the validation split drawn where there is no ``val_dir``."""
    train_root = folder_at(config.train_dir, "train_dir")
    val_root = folder_at(config.val_dir, "val_dir") if config.val_dir is not None else None
    if config.task == "segmentation":
        train, ignored = scan_pairs(train_root, "train_dir")
        if val_root is not None:
            val, more = scan_pairs(val_root, "val_dir")
            ignored += more
        else:
            train_idx, val_idx = split(np.zeros(len(train)), config, stratify=False)
            train, val = [train[i] for i in train_idx], [train[i] for i in val_idx]
        pairs = train + val
        return FolderFiles([p for p, _ in pairs], len(train), _roots(train_root, val_root, len(train), len(val)),
                           masks=[m for _, m in pairs], ignored=[str(p) for p in ignored])
    train_files, ignored = scan_classes(train_root, "train_dir")
    class_names = tuple(train_files)
    index = {name: i for i, name in enumerate(class_names)}
    samples = [(str(p), index[name]) for name, paths in train_files.items() for p in paths]
    if val_root is not None:
        val_files, more = scan_classes(val_root, "val_dir")
        ignored += more
        unknown = sorted(set(val_files) - set(index))
        if unknown:
            raise ValueError(f"data.val_dir: class folders {unknown} in {val_root} are not among the training classes "
                             f"in {train_root}: {', '.join(class_names)}")
        val = [(str(p), index[name]) for name, paths in val_files.items() for p in paths]
    else:
        train_idx, val_idx = split(np.array([t for _, t in samples]), config, stratify=True)
        samples, val = [samples[i] for i in train_idx], [samples[i] for i in val_idx]
    both = samples + val
    return FolderFiles([p for p, _ in both], len(samples), _roots(train_root, val_root, len(samples), len(val)),
                       labels=[t for _, t in both], class_names=class_names, ignored=[str(p) for p in ignored])


def _roots(train_root: Path, val_root: Path | None, n_train: int, n_val: int) -> list[str]:
    return [str(train_root)] * n_train + [str(val_root or train_root)] * n_val


def folder_cache(config: DataConfig, files: FolderFiles) -> FolderCache:
    """The cache ``config``'s files would use on this node (not built yet)."""
    side = stored_side(config.image_size, config.crop_pct or DEFAULT_CROP_PCT)
    return FolderCache(files.images, files.masks, files.roots, side, config.image_size, config.resize,
                       cache_root(config.cache_dir), config.cache_max_gb * 1e9)


def choose_cache(config: DataConfig, cache: FolderCache) -> tuple[bool, str]:
    """Whether to read through the cache, and a line saying which and why."""
    size = f"{cache.count} images at {cache.side}x{cache.side} uint8 ({cache.nbytes / 2**20:,.0f} MB)"
    if config.cache == "off":
        return False, "data.cache: off: images are decoded and resized as each item is read, every epoch"
    if cache.exists():
        return True, f"data.cache: auto: reading {size} from the image cache {cache.path}"
    where = _existing_parent(cache.root)
    free = shutil.disk_usage(where).free
    if cache.nbytes + DISK_MARGIN > free:
        return False, (f"data.cache: auto: the image cache would take {cache.nbytes / 1e9:.1f} GB but {where} has "
                       f"{free / 1e9:.1f} GB free, so images are read per item (slower); free space or set "
                       f"data.cache_dir to a larger disk")
    return True, f"data.cache: auto: caching {size} in {cache.path} ({free / 1e9:.0f} GB free there)"


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def build_folder(config: DataConfig) -> DataBundle:
    """Classification or segmentation data from ``config.train_dir`` (and ``val_dir``)."""
    files = scan_folder(config)
    cache = folder_cache(config, files)
    use_cache, note = choose_cache(config, cache)
    if use_cache:
        cache.ensure(default_echo)
        bad = {files.images[row]: why for row, why in cache.bad.items()}
    else:
        bad = unreadable(files.images, cache.side)
    notes = [note] + [line for line in (files.ignored_note(),) if line]
    if bad and not config.skip_bad_images:
        rows = [files.images.index(p) for p in bad]
        raise BadImagesError(bad, files.field(min(rows)))
    if bad:
        notes.append(f"data.skip_bad_images: left out {len(bad)} unreadable image{'s' * (len(bad) != 1)} "
                     f"(first: {next(iter(bad))})")
    usable = [row for row, path in enumerate(files.images) if path not in bad]
    train_rows = np.array([r for r in usable if r < files.n_train], dtype=np.int64)
    val_rows = np.array([r for r in usable if r >= files.n_train], dtype=np.int64)
    if not len(train_rows) or not len(val_rows):
        raise ValueError(f"data.skip_bad_images: no readable {'training' if not len(train_rows) else 'validation'} "
                         f"image is left")

    lut = None
    if files.masks is not None:
        values = cache.mask_values if use_cache else _values_per_item(files, usable)
        lut, num_classes = mask_lut({v for r in train_rows for v in values[r]},
                                    {v for r in val_rows for v in values[r]}, config.binary)
        class_names = ("background", "foreground") if num_classes == 2 else ("background",) + tuple(
            f"class_{k}" for k in range(1, num_classes))
    else:
        class_names = files.class_names
    mean, std = config.norm(IMAGENET_MEAN, IMAGENET_STD)

    def part(rows: np.ndarray, train: bool) -> Any:
        transform = BatchTransform(config.image_size, mean=mean, std=std, train=train, hflip=config.hflip,
                                   scale=config.scale)
        if use_cache:
            targets: Any = CachedArray(cache, "masks") if files.masks is not None else np.array(files.labels)
            return ArrayDataset(CachedArray(cache, "images"), targets, transform, rows=rows, lut=lut,
                                paths=files.images)
        pick = [int(r) for r in rows]
        return FolderItems([files.images[r] for r in pick],
                           None if files.labels is None else [files.labels[r] for r in pick],
                           None if files.masks is None else [files.masks[r] for r in pick],
                           cache.side, config.image_size, config.resize, transform, lut)

    return DataBundle(
        train=part(train_rows, True),
        val=part(val_rows, False),
        num_classes=len(class_names),
        in_chans=3,
        class_names=class_names,
        task=config.task,
        notes=tuple(notes),
        skipped=tuple(bad),
        ignored=tuple(files.ignored),
    )


def _values_per_item(files: FolderFiles, usable: list[int]) -> dict[int, list[int]]:
    assert files.masks is not None
    found = mask_values([(files.images[r], files.masks[r]) for r in usable])
    return dict(zip(usable, found))


def describe_cache(config: DataConfig) -> str:
    """How ``config``'s folder would be read (the cache's size and place, or why per item), and the files
    it ignores, if any: a line each."""
    files = scan_folder(config)
    lines = [choose_cache(config, folder_cache(config, files))[1], files.ignored_note()]
    return "\n".join(line for line in lines if line)
