"""Build a model without allocating its weights: for questions about its structure alone.

The spec layer asks how many stages a model has or how many parameters it holds
before any trial starts; building it on the ``meta`` device answers in milliseconds.

Example:
    >>> from torch import nn
    >>> build_light(lambda: nn.Linear(10_000, 10_000)).weight.device.type
    'meta'
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode


def build_light(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` with its weights on the meta device where it can, else on the CPU."""
    try:
        with torch.device("meta"):
            return build()
    except (NotImplementedError, RuntimeError):
        pass  # a builder that reads tensor values (torchvision's regnet widths) cannot run on meta
    try:
        with _ParametersOnMeta():
            return build()
    except (NotImplementedError, RuntimeError):
        return build()


class _ParametersOnMeta(TorchFunctionMode):
    """Create ``torch.empty`` tensors (parameters) on meta; small computations stay real."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = dict(kwargs or {})
        if func is torch.empty and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)
