"""Datasets: built-in ones that need no download, your own folders, behind a small registry.

A :class:`DataBundle` is everything a trial needs from the data and nothing it can
rebuild cheaply: in a sweep the driver builds it once and Ray shares it with every
trial through the object store. The implementation lives in
:mod:`tune_app.training.datasets`; this module is its public face.

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

from .datasets import *  # noqa: F401,F403  (the public names, listed once in datasets/__init__.py)
from .datasets import __all__  # noqa: F401
