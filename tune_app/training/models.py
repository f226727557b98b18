"""Model factory: ``<source>/<architecture>`` -> a model with a fresh head, raw logits out.

Sources (``MODEL_SOURCES``):

- ``timm/<arch>``: classification; timm builds the head and adapts the input channels.
- ``torchvision/<arch>``: classification models (head built for ``num_classes``, first
  conv rebuilt for other input channels) and the segmentation models of
  ``torchvision.models.segmentation`` (``fcn_*``, ``deeplabv3_*``, ``lraspp_*``; no aux
  head, returning the ``out`` tensor).
- ``smp/<arch>`` with ``encoder=<timm name>``: segmentation (Unet, FPN, DeepLabV3Plus,
  UnetPlusPlus, ...) over the timm encoder ``tu-<name>``.

Pretrained weights are never fetched by the libraries themselves: ``pretrained=True`` finds
the library's weights file in its cache (see :mod:`.weights`), a path names a file, and
both are loaded by name and shape. Freezing lives in :mod:`.freeze` (which never imports
this module).

Example:
    >>> import torch
    >>> model = create_model("timm/test_resnet", num_classes=10)
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    >>> seg = create_model("smp/Unet", 2, in_chans=1, task="segmentation", encoder="test_resnet")
    >>> seg(torch.zeros(2, 1, 64, 64)).shape   # binary: one channel of logits
    torch.Size([2, 1, 64, 64])
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..schema import did_you_mean_any, unknown_name
from .freeze import stage_count, stage_plan
from .meta import build_light
from .model_facts import remembered
from .param_groups import layer_decay_problem
from .regularization import PROBE, constructor_arguments, reaches, refusal
from .tasks import TASKS
from .tv_segmentation import TorchvisionSegmentation
from .weights import (
    LoadResult,
    PretrainedWeightsError,
    exported_config,
    load_weights,
    timm_weights_file,
    torchvision_weights_file,
)

__all__ = [
    "MODEL_SOURCES",
    "LoadResult",
    "ModelInfo",
    "ModelSize",
    "ModelSource",
    "PretrainedWeightsError",
    "check_model_name",
    "count_parameters",
    "create_model",
    "output_channels",
    "parameter_count_for",
    "regularization_problem",
    "resolve_pretrained",
    "split_model_name",
    "stage_count_for",
    "state_size_for",
]



@dataclass(frozen=True)
class ModelSource:
    """A library models come from.

    Attributes:
        create: ``(arch, outputs, in_chans, *, task, encoder, pretrained, **regularization) -> model`` with
            random weights; ``pretrained`` only tells the builder that weights will follow; the
            regularization arguments are the library's own (:mod:`.regularization`).
        list_names: ``(task=None) -> architectures``, for listings and suggestions.
        exists: Whether an architecture exists (for any task).
        tasks: The tasks an existing architecture supports.
        weights_file: ``(arch, encoder) -> path`` of the library's pretrained weights.
        load_renames: Where a weights file's names may live in the model (see :func:`load_weights`).
        state_filter: Converts a weights file of another layout for ``model``, or None.
    """

    create: Callable[..., nn.Module]
    list_names: Callable[..., list[str]]
    exists: Callable[[str], bool]
    tasks: Callable[[str], tuple[str, ...]]
    weights_file: Callable[[str, str | None], str]
    load_renames: tuple[tuple[str, str], ...] = (("", ""),)
    state_filter: Callable[[dict, nn.Module], dict] | None = None


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`create_model` made, kept on the model as ``model.tune_app_info``."""

    name: str
    task: str
    encoder: str | None
    weights: LoadResult | None  # None: random initialization


def output_channels(task: str, num_classes: int) -> int:
    """Logit channels: ``num_classes``, except binary segmentation's single sigmoid channel.

    ``num_classes`` counts the background in segmentation.

    Example:
        >>> output_channels("segmentation", 2), output_channels("segmentation", 5), output_channels("classification", 2)
        (1, 5, 2)
    """
    if task == "classification":
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        return num_classes
    if task == "segmentation":
        if num_classes < 2:
            raise ValueError(f"segmentation num_classes counts the background and must be >= 2, got {num_classes}")
        return 1 if num_classes == 2 else num_classes
    raise ValueError(unknown_name(task, TASKS, "task"))


# ------------------------------------------------------------------ timm
def _timm_create(arch: str, outputs: int, in_chans: int, *, task: str, encoder: str | None, pretrained: bool,
                 **extra: float) -> nn.Module:
    import timm

    return timm.create_model(arch, pretrained=False, num_classes=outputs, in_chans=in_chans, **extra)


def _timm_names(task: str | None = None) -> list[str]:
    import timm

    return timm.list_models() if task in (None, "classification") else []


def _timm_exists(arch: str) -> bool:
    import timm
    from timm.models import get_pretrained_cfg

    if not timm.is_model(arch):
        return False
    try:  # is_model ignores a tag: resnet18.nope would pass it
        return "." not in arch or get_pretrained_cfg(arch) is not None
    except RuntimeError:  # "Invalid pretrained tag"
        return False


def _timm_filter(state: dict, model: nn.Module) -> dict:
    # The architecture's own converter (original-repo layouts, resized position embeddings).
    convert = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    if convert is None:
        return state
    try:
        return convert(state, model)
    except Exception:  # converters expect foreign layouts; a timm-layout file loads as it is
        return state


# ------------------------------------------------------------------ torchvision
@functools.cache
def _torchvision_lists() -> dict[str, tuple[str, ...]]:
    import torchvision
    from torchvision.models import list_models

    return {"classification": tuple(list_models(module=torchvision.models)),
            "segmentation": tuple(list_models(module=torchvision.models.segmentation))}


def _torchvision_names(task: str | None = None) -> list[str]:
    lists = _torchvision_lists()
    return sorted(n for t, names in lists.items() if task in (None, t) for n in names)


def _torchvision_tasks(arch: str) -> tuple[str, ...]:
    return tuple(t for t, names in _torchvision_lists().items() if arch in names)


def _adapt_first_conv(model: nn.Module, in_chans: int) -> None:
    """Rebuild the first conv for ``in_chans`` inputs; its kernel is the 3-channel one summed/tiled."""
    from timm.models import adapt_input_conv

    name, conv = next((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    new = nn.Conv2d(in_chans, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, conv.bias is not None, conv.padding_mode)
    with torch.no_grad():
        new.weight.copy_(adapt_input_conv(in_chans, conv.weight))  # keeps the family's init scale
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    parent, _, child = name.rpartition(".")
    model.get_submodule(parent).add_module(child, new)


def _torchvision_create(arch: str, outputs: int, in_chans: int, *, task: str, encoder: str | None,
                        pretrained: bool, **extra: float) -> nn.Module:
    from torchvision.models import get_model

    if task == "segmentation":
        model = get_model(arch, weights=None, weights_backbone=None, num_classes=outputs, aux_loss=False, **extra)
        if in_chans != 3:
            _adapt_first_conv(model.backbone, in_chans)
        return TorchvisionSegmentation(model)
    kwargs: dict = {}
    if arch in ("googlenet", "inception_v3"):
        # no aux heads; torchvision's weights expect its input re-normalization (3 channels only)
        kwargs = dict(aux_logits=False, init_weights=True, transform_input=pretrained and in_chans == 3)
    model = get_model(arch, weights=None, num_classes=outputs, **kwargs, **extra)
    if in_chans != 3:
        _adapt_first_conv(model, in_chans)
    return model


# ------------------------------------------------------------------ smp
def _smp_encoder(encoder: str) -> str:
    return encoder[3:] if encoder.startswith("tu-") else encoder


def _smp_create(arch: str, outputs: int, in_chans: int, *, task: str, encoder: str | None, pretrained: bool,
                **extra: float) -> nn.Module:
    import segmentation_models_pytorch as smp

    return smp.create_model(arch, encoder_name=f"tu-{_smp_encoder(encoder or '')}", encoder_weights=None,
                            in_channels=in_chans, classes=outputs, **extra)  # extra: to the timm encoder


def _smp_mapping() -> dict[str, type]:
    from segmentation_models_pytorch import MODEL_ARCHITECTURES_MAPPING

    return MODEL_ARCHITECTURES_MAPPING


def _smp_names(task: str | None = None) -> list[str]:
    return sorted(cls.__name__ for cls in _smp_mapping().values()) if task in (None, "segmentation") else []


def _smp_weights(arch: str, encoder: str | None) -> str:
    return timm_weights_file(_smp_encoder(encoder or ""))


MODEL_SOURCES: dict[str, ModelSource] = {
    "timm": ModelSource(
        create=_timm_create, list_names=_timm_names, exists=_timm_exists,
        tasks=lambda arch: ("classification",),
        weights_file=lambda arch, encoder: timm_weights_file(arch),
        state_filter=_timm_filter,
    ),
    "torchvision": ModelSource(
        create=_torchvision_create, list_names=_torchvision_names,
        exists=lambda arch: bool(_torchvision_tasks(arch)), tasks=_torchvision_tasks,
        weights_file=lambda arch, encoder: torchvision_weights_file(arch),
        # a file of this model, torchvision's segmentation file, or a classifier's file for the backbone
        load_renames=(("", ""), ("", "model."), ("features.", "model.backbone."), ("", "model.backbone.")),
    ),
    "smp": ModelSource(
        create=_smp_create, list_names=_smp_names,
        exists=lambda arch: arch.lower() in _smp_mapping(), tasks=lambda arch: ("segmentation",),
        weights_file=_smp_weights,
        load_renames=(("", ""), ("", "encoder.model.")),  # a whole-model file, or the encoder's timm classifier file
    ),
}


# ------------------------------------------------------------------ names
def split_model_name(name: str) -> tuple[str, str]:
    """``"timm/resnet18"`` -> ``("timm", "resnet18")``; raises ``ValueError`` if malformed."""
    source, sep, arch = name.partition("/")
    if not sep or not arch:
        raise ValueError(f"model name must look like <source>/<architecture> with source one of "
                         f"{', '.join(MODEL_SOURCES)}, got {name!r}")
    if source not in MODEL_SOURCES:
        raise ValueError(f"unknown model source {source!r} in {name!r}; known: {', '.join(MODEL_SOURCES)}")
    return source, arch


@remembered("check_model_name")
def check_model_name(name: str, task: str | None = None, encoder: str | None = None) -> str:
    """Return ``name`` if it names a model for ``task`` (any task if None), else raise ``ValueError``.

    The message suggests close matches and, for a model of the other task, where to look.

    Example:
        >>> check_model_name("timm/resnet81")
        Traceback (most recent call last):
        ...
        ValueError: unknown timm model 'resnet81'; did you mean timm/resnet18, ... (`tune-app list models timm/PATTERN` lists them)
    """
    source, arch = split_model_name(name)
    registry = MODEL_SOURCES[source]
    if not registry.exists(arch):
        base = arch.partition(".")[0]
        if source == "timm" and base != arch and registry.exists(base):
            import timm

            tags = ", ".join(f"timm/{t}" for t in timm.list_pretrained(f"{base}.*")) or "none"
            raise ValueError(f"unknown timm model {arch!r}: {base} has no pretrained tag {arch[len(base) + 1:]!r}; "
                             f"its tags: {tags}")
        raise ValueError(f"unknown {source} model {arch!r}{did_you_mean_any(arch, registry.list_names(task), source + '/')} "
                         f"(`tune-app list models {source}/PATTERN` lists them)")
    if task is not None and task not in registry.tasks(arch):
        raise ValueError(_wrong_task(source, arch, task))
    if source == "smp":
        if encoder is None:
            if task is not None:
                raise ValueError(f"{name} needs model.encoder: a timm model name such as resnet18 or efficientnet_b0")
        else:
            _check_encoder(encoder)
    elif encoder is not None:
        raise ValueError(f"model.encoder only applies to smp/<arch> models, not {name}; remove it, "
                         f"or use e.g. smp/Unet with encoder: {encoder}")
    return name


def _wrong_task(source: str, arch: str, task: str) -> str:
    if source == "timm":
        return (f"timm models are classifiers; for segmentation use an smp model over this timm encoder: "
                f"model.name: smp/Unet (or smp/FPN, smp/DeepLabV3Plus, ...) with model.encoder: {arch}")
    if source == "smp":
        return f"smp/{arch} is a segmentation model; for {task} use timm/<name> or torchvision/<name>"
    other = ", ".join(_torchvision_names(task)) if task == "segmentation" else "e.g. torchvision/resnet18"
    return (f"torchvision/{arch} is not a {task} model; torchvision's {task} models: {other}"
            + (" (or smp/Unet with model.encoder: a timm name)" if task == "segmentation" else ""))


def _check_encoder(encoder: str) -> None:
    import timm

    arch = _smp_encoder(encoder)
    if not _timm_exists(arch):
        raise ValueError(f"unknown timm encoder {arch!r}{did_you_mean_any(arch, timm.list_models())} "
                         f"(model.encoder takes a timm model name; `tune-app list models timm/PATTERN` lists them)")


# ------------------------------------------------------------------ building
def resolve_pretrained(name: str, pretrained: bool | str | os.PathLike[str] | None,
                       encoder: str | None = None) -> bool | str:
    """Turn ``model.pretrained`` into ``False`` or a local weights file, once before a sweep.

    ``True`` finds the library's weights in its cache (downloading them unless
    ``HF_HUB_OFFLINE=1``), so no trial fetches anything; a path must exist (a weights
    file, or the directory of a model ``tune-app export`` wrote).

    Raises:
        PretrainedWeightsError: The file does not exist, or ``True`` and nothing is cached
            while offline (the message says how to pass a local file).

    Example:
        >>> resolve_pretrained("timm/resnet18", False)
        False
    """
    if pretrained is None or pretrained is False:
        return False
    if pretrained is True:
        source, arch = split_model_name(name)
        if source == "smp" and not encoder:
            raise ValueError(f"{name} needs model.encoder to know which pretrained weights to use")
        return MODEL_SOURCES[source].weights_file(arch, encoder)
    path = Path(pretrained).expanduser().resolve()
    if not path.is_file() and exported_config(path) is None:  # a weights file, or an exported model's directory
        raise PretrainedWeightsError(f"model.pretrained: no such file: {path}")
    return str(path)


def create_model(
    name: str,
    num_classes: int,
    in_chans: int = 3,
    pretrained: bool | str | os.PathLike[str] = False,
    *,
    task: str = "classification",
    encoder: str | None = None,
    regularization: Mapping[str, float | None] | None = None,
) -> nn.Module:
    """Build model ``name`` for ``task`` with a fresh ``output_channels(task, num_classes)`` head.

    Args:
        name: ``timm/<arch>``, ``torchvision/<arch>`` or ``smp/<arch>``.
        num_classes: Classes (segmentation: including the background).
        in_chans: Input channels; pretrained first-conv kernels are summed or tiled to fit.
        pretrained: ``False``, ``True`` (the library's weights, from its cache), a
            weights file, or an exported model's directory (``tune-app export``). Weights whose name and shape match are loaded; the head stays fresh.
        task: ``classification`` or ``segmentation``.
        encoder: The timm encoder of an ``smp/`` model.
        regularization: ``{"drop_path": rate, "dropout": rate}`` (None or 0: the model's default), see
            :mod:`.regularization`.

    Returns:
        The model, returning logits ``[B, C]`` or ``[B, C, H, W]`` at the input size. What
        was loaded is on ``model.tune_app_info.weights``.
    """
    check_model_name(name, task=task, encoder=encoder)
    source, arch = split_model_name(name)
    registry = MODEL_SOURCES[source]
    path = resolve_pretrained(name, pretrained, encoder)
    model = registry.create(arch, output_channels(task, num_classes), in_chans, task=task, encoder=encoder,
                            pretrained=bool(path), **constructor_arguments(name, regularization or {}))
    report = None
    if path:
        head = set(stage_plan(model).head)  # the backbone must be in the file; the head may not
        report = load_weights(model, path, renames=registry.load_renames, filter_fn=registry.state_filter,
                              required=[k for k in model.state_dict() if k not in head], label=name)
    model.tune_app_info = ModelInfo(name=name, task=task, encoder=encoder, weights=report)
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Parameter elements of ``model``, or only those that will train."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@remembered("stage_count_for")
def stage_count_for(name: str, *, task: str = "classification", encoder: str | None = None) -> int:
    """The stage count of model ``name``, without allocating its weights (for the spec layer).

    The model is built on the ``meta`` device (no memory, no initialization): a few
    milliseconds for most models, under a second for the largest.

    Example:
        >>> stage_count_for("torchvision/resnet50")
        4
    """
    return stage_count(_skeleton(name, task, encoder))


@remembered("parameter_count_for")
def parameter_count_for(name: str, *, task: str = "classification", encoder: str | None = None) -> int:
    """The number of parameters of model ``name`` (with a 2-class head), without allocating them."""
    return sum(p.numel() for p in _skeleton(name, task, encoder).parameters())


@remembered("regularization_problem")
def regularization_problem(name: str, knob: str, *, task: str = "classification",
                           encoder: str | None = None) -> str | None:
    """Why model ``name`` cannot take ``knob`` (``drop_path`` or ``dropout``), or None when it can.

    The model is built on the meta device with a probe rate, and the rate must reach a layer:
    a drop-path module (timm's ``DropPath``, torchvision's ``StochasticDepth``) or, for
    dropout, the model's ``drop_rate`` or a ``Dropout`` layer.
    """
    check_model_name(name, task=task, encoder=encoder)  # a bad name is its own error, reported where it is named
    try:
        model = _skeleton(name, task, encoder, regularization={knob: PROBE})
    except (TypeError, ValueError):
        return refusal(name, knob)
    return None if reaches(model, knob) else refusal(name, knob)


@remembered("layer_decay_problem_for")
def layer_decay_problem_for(name: str, *, task: str = "classification", encoder: str | None = None) -> str | None:
    """Why model ``name`` cannot take ``layer_decay``, or None when it can (built on the meta device)."""
    check_model_name(name, task=task, encoder=encoder)
    return layer_decay_problem(_skeleton(name, task, encoder), name)


@dataclass(frozen=True)
class ModelSize:
    """How big a model's ``state_dict`` is: bytes and tensors, parameters alone and in all (buffers too)."""

    state_bytes: int
    state_tensors: int
    param_bytes: int
    param_tensors: int


@remembered("state_size_for", encode=asdict, decode=lambda fact: ModelSize(**fact))
def state_size_for(name: str, *, task: str = "classification", encoder: str | None = None,
                   num_classes: int = 2) -> ModelSize:
    """The size of model ``name``'s ``state_dict`` with a ``num_classes`` head, without allocating it.

    Example:
        >>> size = state_size_for("timm/test_resnet", num_classes=10)
        >>> size.param_bytes == 4 * (parameter_count_for("timm/test_resnet") + 8 * (96 + 1))  # 8 more classes
        True
        >>> size.state_bytes > size.param_bytes  # BatchNorm statistics
        True
    """
    model = _skeleton(name, task, encoder, num_classes)
    state = model.state_dict()
    params = dict(model.named_parameters())
    return ModelSize(state_bytes=sum(t.numel() * t.element_size() for t in state.values()), state_tensors=len(state),
                     param_bytes=sum(p.numel() * p.element_size() for p in params.values()), param_tensors=len(params))


def _skeleton(name: str, task: str, encoder: str | None, num_classes: int = 2,
              regularization: Mapping[str, float] | None = None) -> nn.Module:
    return build_light(functools.partial(create_model, name, num_classes, 3, False, task=task, encoder=encoder,
                                         regularization=regularization))
