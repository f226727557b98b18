"""Model factory: ``<source>/<architecture>`` -> a model with a fresh head.

Example:
    >>> model = create_model("timm/test_resnet", num_classes=10)
    >>> import torch
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

from torch import nn


@dataclass(frozen=True)
class ModelSource:
    """A library models come from: how to build one and which names exist."""

    create: Callable[..., nn.Module]
    list_names: Callable[[], list[str]]
    exists: Callable[[str], bool]


def _timm_create(arch: str, num_classes: int, in_chans: int, pretrained: bool) -> nn.Module:
    import timm

    return timm.create_model(arch, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans)


def _timm_names() -> list[str]:
    import timm

    return timm.list_models()


def _timm_exists(arch: str) -> bool:
    import timm

    return timm.is_model(arch)


MODEL_SOURCES: dict[str, ModelSource] = {
    "timm": ModelSource(_timm_create, _timm_names, _timm_exists),
}


def split_model_name(name: str) -> tuple[str, str]:
    """``"timm/resnet18"`` -> ``("timm", "resnet18")``; raises ``ValueError`` if malformed."""
    source, sep, arch = name.partition("/")
    if not sep or not arch:
        raise ValueError(f"model name must look like <source>/<architecture> with source one of "
                         f"{', '.join(MODEL_SOURCES)}, got {name!r}")
    if source not in MODEL_SOURCES:
        raise ValueError(f"unknown model source {source!r} in {name!r}; known: {', '.join(MODEL_SOURCES)}")
    return source, arch


def check_model_name(name: str) -> str:
    """Return ``name`` if the model exists, else raise ``ValueError`` with close matches."""
    source, arch = split_model_name(name)
    registry = MODEL_SOURCES[source]
    if not registry.exists(arch):
        close = difflib.get_close_matches(arch, registry.list_names(), n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(f'{source}/{c}' for c in close)}?" if close else ""
        raise ValueError(f"unknown {source} model {arch!r}{hint} (`tune-app list models {source}/PATTERN` lists them)")
    return name


def create_model(name: str, num_classes: int, in_chans: int = 3, pretrained: bool = False) -> nn.Module:
    """Build model ``name`` with a new ``num_classes``-way head."""
    source, arch = split_model_name(name)
    return MODEL_SOURCES[source].create(arch, num_classes=num_classes, in_chans=in_chans, pretrained=pretrained)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

