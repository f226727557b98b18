"""Datasets of the shared training function: built-in ones that need no download, your own folders.

A :class:`DataBundle` is everything a trial needs from the data and nothing it can
rebuild cheaply: in a sweep the driver builds it once and Ray shares it with every
trial through the object store. Every dataset's splits are read a batch at a time
(:class:`ArrayDataset` and :class:`BatchLoader`) and augmented as batch tensors
(:class:`BatchTransform`); folder images are decoded once per node into a shared cache
(:class:`FolderCache`), or read per item with ``data.cache: off`` (:class:`FolderItems`).
The implementation lives in private modules; this package is its one public face.

=========  =============================  ==========================================
dataset    tasks                          what
=========  =============================  ==========================================
digits     classification                 sklearn's 8x8 digits, 1797 images, in memory
shapes     segmentation                   generated shapes with exact masks, in memory
folder     classification, segmentation   ``data.train_dir`` / ``data.val_dir`` on disk
=========  =============================  ==========================================

Example:
    >>> bundle = build_data(DataConfig(dataset="digits", image_size=16))
    >>> bundle.num_classes, len(bundle.train) + len(bundle.val)
    (10, 1797)
    >>> seg = build_data(DataConfig(dataset="shapes", task="segmentation", image_size=32, binary=True))
    >>> seg.num_classes, tuple(seg.train[0][1].shape)
    (2, (32, 32))
"""

from __future__ import annotations

from ._arrays import ArrayDataset, BatchLoader
from ._augment import BatchTransform, sample_boxes
from ._base import DEFAULT_CROP_PCT, INTERPOLATIONS, DataBundle, DataConfig, DatasetInfo, scale_problem
from ._cache import BadImagesError, FolderCache, cache_root, stored_side
from ._folder import describe_cache, scan_folder
from ._per_item import FolderItems
from ._registry import DATASETS, build_data, check_data, eval_preprocessing
from ._sample_photos import write_sample_photos
from ._shapes import ShapeScenes, generate_shapes

__all__ = [
    "DATASETS",
    "DEFAULT_CROP_PCT",
    "INTERPOLATIONS",
    "ArrayDataset",
    "BadImagesError",
    "BatchLoader",
    "BatchTransform",
    "DataBundle",
    "DataConfig",
    "DatasetInfo",
    "FolderCache",
    "FolderItems",
    "ShapeScenes",
    "build_data",
    "cache_root",
    "check_data",
    "describe_cache",
    "eval_preprocessing",
    "generate_shapes",
    "sample_boxes",
    "scale_problem",
    "scan_folder",
    "stored_side",
    "write_sample_photos",
]
