"""Datasets of the shared training function: built-in ones and your own folders.

Every dataset's splits are read a batch at a time (:class:`ArrayDataset` and
:class:`BatchLoader`) and augmented as batch tensors (:class:`BatchTransform`); folder
images are decoded once per node into a shared cache (:class:`FolderCache`), or read
per item with ``data.cache: off`` (:class:`FolderItems`). The public API is
re-exported by :mod:`tune_app.training.data`.
"""

from __future__ import annotations

from ._arrays import ArrayDataset, BatchLoader
from ._augment import BatchTransform, sample_boxes
from ._base import DEFAULT_CROP_PCT, INTERPOLATIONS, DataBundle, DataConfig, DatasetInfo
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
    "scan_folder",
    "stored_side",
    "write_sample_photos",
]
