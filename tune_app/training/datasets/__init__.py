"""Datasets of the shared training function: built-in ones and your own folders.

The public API is re-exported by :mod:`tune_app.training.data`.
"""

from __future__ import annotations

from ._base import DataBundle, DataConfig, DatasetInfo
from ._folder import FolderImages, FolderMasks
from ._memory import ImageMasks, ImageTensors
from ._registry import DATASETS, build_data, check_data, eval_preprocessing
from ._shapes import ShapeScenes, generate_shapes
from ._transforms import PairTransform, timm_transform

__all__ = [
    "DATASETS",
    "DataBundle",
    "DataConfig",
    "DatasetInfo",
    "FolderImages",
    "FolderMasks",
    "ImageMasks",
    "ImageTensors",
    "PairTransform",
    "ShapeScenes",
    "build_data",
    "check_data",
    "eval_preprocessing",
    "generate_shapes",
    "timm_transform",
]
