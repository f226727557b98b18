"""The dataset registry and the one entry point, :func:`build_data`.

Example:
    >>> bundle = build_data(DataConfig(dataset="shapes", task="segmentation", image_size=32))
    >>> bundle.class_names, len(bundle.train), len(bundle.val)
    (('background', 'circle', 'square', 'triangle'), 640, 160)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ...schema import unknown_name
from ..tasks import TASKS
from ._base import DEFAULT_CROP_PCT, DataBundle, DataConfig, DatasetInfo
from ._folder import IMAGENET_MEAN, IMAGENET_STD, build_folder
from ._memory import build_digits
from ._shapes import build_shapes

DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(build_digits, ("classification",),
                          help="scikit-learn's 8x8 handwritten digits: 1797 images, 10 classes"),
    "shapes": DatasetInfo(build_shapes, ("segmentation",),
                          help="generated circles, squares and triangles with exact masks: 800 images, 4 classes"),
    "folder": DatasetInfo(build_folder, ("classification", "segmentation"), mean=IMAGENET_MEAN, std=IMAGENET_STD,
                          framed=True,
                          help="your images: data.train_dir (and data.val_dir) in ImageFolder or images/ + masks/ layout"),
}


def check_data(config: DataConfig) -> DatasetInfo:
    """The registry entry of ``config.dataset``, if it supports ``config.task``; else ValueError."""
    info = DATASETS.get(config.dataset)
    if info is None:
        raise ValueError(unknown_name(config.dataset, DATASETS, "dataset"))
    if config.task not in TASKS:
        raise ValueError(unknown_name(config.task, TASKS, "task"))
    if config.task not in info.tasks:
        fits = [name for name, other in DATASETS.items() if config.task in other.tasks]
        raise ValueError(f"dataset {config.dataset!r} supports {' and '.join(info.tasks)}, not {config.task}; "
                         f"datasets for {config.task}: {', '.join(fits)}")
    return info


def eval_preprocessing(config: DataConfig) -> dict[str, Any]:
    """What validation does to an image before the model sees it, in timm's pretrained-config terms.

    ``input_size`` is ``(3, H, W)``; ``crop_pct`` is the share of the (resized) image the
    centre crop keeps (folder images: resized so the shorter side is ``ceil(H / crop_pct)``,
    then the centre ``H`` x ``W``); ``mean``/``std`` normalize after scaling pixels to [0, 1].

    Example:
        >>> eval_preprocessing(DataConfig(dataset="digits", image_size=32))["input_size"]
        (3, 32, 32)
    """
    info = check_data(config)
    mean, std = config.norm(info.mean, info.std)
    size = config.image_size
    if not info.framed:  # stored at image_size itself: nothing is cropped
        return {"input_size": (3, size, size), "mean": mean, "std": std, "interpolation": "bilinear", "crop_pct": 1.0}
    return {"input_size": (3, size, size), "mean": mean, "std": std, "interpolation": config.resize,
            "crop_pct": config.crop_pct or DEFAULT_CROP_PCT}


def build_data(config: DataConfig) -> DataBundle:
    """Build the dataset named by ``config.dataset`` for ``config.task``; the bundle keeps ``config``.

    A trial's data config is completed for its model first
    (:func:`~tune_app.training.engine.build_data_for` does both).
    """
    return dataclasses.replace(check_data(config).build(config), config=config)
