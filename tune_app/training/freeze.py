"""Backbone stages and freezing: ``freeze_depth: k`` freezes the stem and the first k stages.

Stages come from the model itself:

- timm: the coarse parameter groups of ``model.group_matcher(coarse=True)`` (the ones
  timm's layer-wise LR decay uses): resnet ``layer1..4``, convnext ``stages.0..3``, vit
  ``blocks.0..11``. Whatever no group claims (final norms, pre-logits) is frozen only by
  ``all``.
- torchvision: a small table per family (resnet ``conv1/bn1`` + ``layer1..4``; mobilenets
  grouped by block width; efficientnet ``features.1..7``; convnext and swin pair each
  downsampling layer with the blocks after it; ...).
- smp: the timm encoder's own groups; the decoder and segmentation head are the "head".

``all`` freezes everything but the head: the new classifier, or for segmentation the
whole decoder (so exactly the encoder is frozen). With ``bn_eval`` the frozen BatchNorm
layers become :class:`~torchvision.ops.FrozenBatchNorm2d` (as ``timm.utils.model.freeze``
does), so ``model.train()`` cannot make them update their running statistics.
:func:`unfreeze` undoes it (``unfreeze_epoch``: the head trains alone first, then every layer).

Example:
    >>> from tune_app.training.models import create_model
    >>> model = create_model("timm/test_resnet", num_classes=10)
    >>> stage_count(model)
    4
    >>> frozen = freeze(model, 2)
    >>> model.layer2[0].conv1.weight.requires_grad, model.layer3[0].conv1.weight.requires_grad
    (False, True)
    >>> type(model.bn1).__name__
    'FrozenBatchNorm2d'
    >>> unfreeze(model, frozen)
    >>> model.layer2[0].conv1.weight.requires_grad, type(model.bn1).__name__
    (True, 'BatchNorm2d')
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .meta import build_light
from .tv_segmentation import TorchvisionSegmentation


@dataclass(frozen=True)
class StagePlan:
    """A model's tensors (parameter and buffer names) by role.

    Attributes:
        stem: Frozen by any depth >= 1.
        stages: Leading backbone stages, in forward order.
        head: Never frozen: the new classifier, or a segmentation model's decoder and head.
    """

    stem: tuple[str, ...]
    stages: tuple[tuple[str, ...], ...]
    head: tuple[str, ...]


@dataclass(frozen=True)
class Frozen:
    """What :func:`freeze` froze, for :func:`unfreeze`.

    Attributes:
        params: Names of the parameters it froze.
        batch_norms: Module name -> the BatchNorm layer a ``FrozenBatchNorm2d`` replaced
            (kept: its parameters are the objects an optimizer built before freezing holds).
    """

    params: tuple[str, ...] = ()
    batch_norms: dict[str, nn.Module] = field(default_factory=dict)


# ------------------------------------------------------------------ public API
def stage_plan(model: nn.Module) -> StagePlan:
    """Split ``model``'s tensors into stem, stages and head (see the module docs)."""
    names = _tensor_names(model)
    if isinstance(model, TorchvisionSegmentation):
        stem, stages = _torchvision_backbone(model.model.backbone, "model.backbone.")
        return _plan(names, stem, stages, [n for n in names if not n.startswith("model.backbone.")])
    if _is_smp(model):
        return _smp_plan(model, names)
    if hasattr(model, "group_matcher") and hasattr(model, "pretrained_cfg"):
        return _timm_plan(model, names)
    layout = TORCHVISION_LAYOUTS.get(type(model).__name__)
    if layout is None:
        raise ValueError(f"cannot tell the stages of a {type(model).__name__}: freezing knows timm, torchvision "
                         f"({', '.join(TORCHVISION_LAYOUTS)}) and smp models")
    stem, stages, head = layout(model)
    return _plan(names, stem, stages, _under(names, head))


def stage_count(model: nn.Module) -> int:
    """How many stages ``freeze_depth`` can freeze (the stem comes with the first one)."""
    return len(stage_plan(model).stages)


def check_freeze_depth(depth: int | str, stages: int, label: str = "the model") -> int | str:
    """Return ``depth`` if it is ``"all"`` or an integer in ``0..stages``, else raise ``ValueError``.

    Example:
        >>> check_freeze_depth(7, 4, "timm/resnet18")
        Traceback (most recent call last):
        ...
        ValueError: freeze_depth 7 is more than timm/resnet18's 4 stages (use 0..4, or all to freeze everything but the head)
    """
    if depth == "all":
        return depth
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth < 0:
        raise ValueError(f"freeze_depth must be an integer >= 0 or 'all', got {depth!r}")
    if depth > stages:
        raise ValueError(f"freeze_depth {depth} is more than {label}'s {stages} stages "
                         f"(use 0..{stages}, or all to freeze everything but the head)")
    return int(depth)


def freeze(model: nn.Module, depth: int | str, bn_eval: bool = True, *, name: str | None = None) -> Frozen:
    """Freeze the stem and the first ``depth`` stages of ``model`` in place.

    Args:
        model: A model from :func:`~tune_app.training.models.create_model` (or any timm,
            torchvision or smp model).
        depth: ``0`` freezes nothing, ``k`` the stem and the first k stages, ``"all"``
            everything but the head.
        bn_eval: Turn frozen BatchNorm layers into ``FrozenBatchNorm2d``: they keep
            normalizing with the pretrained statistics through ``model.train()``.
        name: The model's name for error messages (default: the one ``create_model`` gave).

    Returns:
        What was frozen, for :func:`unfreeze`.

    Raises:
        ValueError: ``depth`` is negative, not an integer, or more than the model's stages.
    """
    plan = stage_plan(model)
    label = name or getattr(getattr(model, "tune_app_info", None), "name", None) or type(model).__name__
    depth = check_freeze_depth(depth, len(plan.stages), label)
    if depth == 0:
        return Frozen()
    if depth == "all":
        frozen = set(_tensor_names(model)) - set(plan.head)
    else:
        frozen = set(plan.stem).union(*plan.stages[:depth])
    params = []
    for param_name, param in model.named_parameters():
        if param_name in frozen:
            param.requires_grad_(False)
            params.append(param_name)
    return Frozen(tuple(params), _freeze_batch_norms(model, frozen) if bn_eval else {})


def unfreeze(model: nn.Module, frozen: Frozen, *copies: nn.Module) -> None:
    """Let every layer :func:`freeze` froze train again.

    The replaced BatchNorm layers come back as the same objects, with the values their
    frozen stand-ins hold now (a checkpoint may have been loaded since), so an optimizer
    built over the whole model before freezing trains them from here on. ``copies`` are
    modules of the same structure (the weights' moving average) whose frozen BatchNorm
    layers become plain ones too.
    """
    from timm.utils.model import unfreeze_batch_norm_2d

    for module_name, original in frozen.batch_norms.items():
        parent_name, _, child = module_name.rpartition(".")
        stand_in = model.get_submodule(module_name)
        with torch.no_grad():
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(original, key).copy_(getattr(stand_in, key))
        model.get_submodule(parent_name).add_module(child, original)
        for copy in copies:
            frozen_copy = copy.get_submodule(module_name)
            with torch.device(frozen_copy.weight.device):
                copy.get_submodule(parent_name).add_module(child, unfreeze_batch_norm_2d(frozen_copy))
    params = dict(model.named_parameters())
    for param_name in frozen.params:
        params[param_name].requires_grad_(True)


# ------------------------------------------------------------------ helpers
def _tensor_names(model: nn.Module) -> list[str]:
    return [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]


def _under(names: Iterable[str], prefixes: Iterable[str]) -> list[str]:
    prefixes = tuple(prefixes)
    return [n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes)]


def _plan(names: Sequence[str], stem: Iterable[str], stages: Iterable[Iterable[str]], head: Iterable[str]) -> StagePlan:
    """Prefixes (module or tensor paths) -> the tensor names under them."""
    stage_names = tuple(tuple(_under(names, s)) for s in stages)
    return StagePlan(tuple(_under(names, stem)), tuple(s for s in stage_names if s), tuple(head))


def _freeze_batch_norms(model: nn.Module, frozen: set[str]) -> dict[str, nn.Module]:
    from timm.utils.model import freeze_batch_norm_2d

    replaced = {}
    for module_name, module in list(model.named_modules()):
        if not isinstance(module, nn.modules.batchnorm._BatchNorm) or not (module.affine and module.track_running_stats):
            continue
        own = [f"{module_name}.{n}" if module_name else n for n, _ in module.named_parameters(recurse=False)]
        if own and all(n in frozen for n in own):
            parent_name, _, child = module_name.rpartition(".")
            with torch.device(module.weight.device):  # timm builds the frozen copy on the default device
                model.get_submodule(parent_name).add_module(child, freeze_batch_norm_2d(module))
            replaced[module_name] = module
    return replaced


# ------------------------------------------------------------------ timm
def _timm_groups(model: nn.Module, names: Sequence[str]) -> tuple[list[str], list[list[str]], list[str]]:
    """timm's coarse groups of ``names`` -> (stem, stages, unclaimed)."""
    from timm.models._manipulate import group_with_matcher

    matcher = model.group_matcher(coarse=True)
    groups = [list(g) for g in group_with_matcher(((n, None) for n in names), matcher).values()]
    patterns = _matcher_patterns(matcher)
    claimed = [g for g in groups if patterns is None or any(p.match(g[0]) for p in patterns)]
    unclaimed = [n for g in groups if g not in claimed for n in g]
    stem_pattern = matcher.get("stem") if isinstance(matcher, dict) else None
    if claimed and (stem_pattern is None or re.match(stem_pattern, claimed[0][0])) and len(claimed) > 1:
        return claimed[0], claimed[1:], unclaimed
    return [], claimed, unclaimed


def _matcher_patterns(matcher: object) -> list[re.Pattern] | None:
    if not isinstance(matcher, dict):
        return None  # a callable matcher claims every name
    patterns = []
    for spec in matcher.values():
        if spec is None:
            continue
        for entry in spec if isinstance(spec, (list, tuple)) else [spec]:
            patterns.append(re.compile(entry[0] if isinstance(entry, (list, tuple)) else entry))
    return patterns


def _timm_head(model: nn.Module, names: Sequence[str]) -> list[str]:
    classifier = model.pretrained_cfg.get("classifier") if model.pretrained_cfg else None
    prefixes = [classifier] if isinstance(classifier, str) else list(classifier or [])
    if not _under(names, prefixes):  # no usable config: find the classifier module itself
        head_module = model.get_classifier()
        prefixes = [n for n, m in model.named_modules() if m is head_module and n]
    return _under(names, prefixes)


def _timm_plan(model: nn.Module, names: Sequence[str]) -> StagePlan:
    head = _timm_head(model, names)
    stem, stages, _ = _timm_groups(model, [n for n in names if n not in set(head)])
    return StagePlan(tuple(stem), tuple(tuple(s) for s in stages), tuple(head))


# ------------------------------------------------------------------ smp
def _is_smp(model: nn.Module) -> bool:
    try:
        from segmentation_models_pytorch.base import SegmentationModel
    except ImportError:
        return False
    return isinstance(model, SegmentationModel)


def _smp_plan(model: nn.Module, names: Sequence[str]) -> StagePlan:
    head = [n for n in names if not n.startswith("encoder.")]
    net = getattr(model.encoder, "model", None)
    arch = (getattr(net, "pretrained_cfg", None) or {}).get("architecture")
    if arch is None:
        raise ValueError(f"cannot tell the stages of smp encoder {type(model.encoder).__name__}: "
                         f"tune-app builds smp models over timm encoders (tu-<name>)")
    import timm

    reference = build_light(lambda: timm.create_model(arch))  # the classifier the encoder was cut from
    reference_names = _tensor_names(reference)
    # features_only nets keep timm's names, or flatten a top-level Sequential: stages.0 -> stages_0
    prefix = "encoder.model."
    encoder_names = {n[len(prefix):] for n in names if n.startswith(prefix)}
    to_encoder = {}
    for ref in reference_names:
        for candidate in (ref, ref.replace(".", "_", 1)):
            if candidate in encoder_names:
                to_encoder[ref] = prefix + candidate
                break
    stem, stages, _ = _timm_groups(reference, [n for n in reference_names if n in to_encoder])
    return StagePlan(tuple(to_encoder[n] for n in stem), tuple(tuple(to_encoder[n] for n in s) for s in stages),
                     tuple(head))


# ------------------------------------------------------------------ torchvision
Layout = tuple[list[str], list[list[str]], list[str]]  # stem, stages, head: module or tensor paths


def _children(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    return [(f"{prefix}{n}", m) for n, m in module.named_children()]


def _split_after_pools(children: list[tuple[str, nn.Module]]) -> list[list[str]]:
    """VGG-style ``features``: a stage ends at each max-pooling."""
    stages, current = [], []
    for name, module in children:
        current.append(name)
        if isinstance(module, nn.MaxPool2d):
            stages.append(current)
            current = []
    return stages + ([current] if current else [])


def _by_width(children: list[tuple[str, nn.Module]]) -> list[list[str]]:
    """Consecutive blocks of one output width form a stage (mobilenets); stage modules stand alone."""
    stages: list[list[str]] = []
    width = None
    for name, module in children:
        channels = getattr(module, "out_channels", None)
        if channels is None or channels != width:
            stages.append([])
        stages[-1].append(name)
        width = channels
    return stages


def _pairs(children: list[tuple[str, nn.Module]]) -> list[list[str]]:
    """ConvNeXt / Swin ``features[1:]``: a stage, then (downsampling, stage) pairs."""
    names = [n for n, _ in children]
    return [names[:1]] + [names[i:i + 2] for i in range(1, len(names), 2)]


def _torchvision_backbone(backbone: nn.Module, prefix: str) -> tuple[list[str], list[list[str]]]:
    """A segmentation backbone: a resnet, or mobilenet ``features`` (IntermediateLayerGetter)."""
    children = _children(backbone, prefix)
    if hasattr(backbone, "layer1"):
        return [f"{prefix}conv1", f"{prefix}bn1"], [[f"{prefix}layer{i}"] for i in range(1, 5)]
    return [children[0][0]], _by_width(children[1:-1])  # the last 1x1 conv, like a classifier's: only "all"


def _features(model: nn.Module, head: str) -> Layout:
    """``features[0]`` stem, ``features[1:-1]`` blocks grouped by width, ``features[-1]`` the last conv."""
    children = _children(model.features, "features.")
    return [children[0][0]], _by_width(children[1:-1]), [head]


TORCHVISION_LAYOUTS: dict[str, Callable[[nn.Module], Layout]] = {
    "ResNet": lambda m: (["conv1", "bn1"], [[f"layer{i}"] for i in range(1, 5)], ["fc"]),
    "RegNet": lambda m: (["stem"], [[n] for n, _ in _children(m.trunk_output, "trunk_output.")], ["fc"]),
    "ShuffleNetV2": lambda m: (["conv1"], [["stage2"], ["stage3"], ["stage4"]], ["fc"]),
    "GoogLeNet": lambda m: (["conv1", "conv2", "conv3"],
                            [["inception3a", "inception3b"], [f"inception4{c}" for c in "abcde"],
                             ["inception5a", "inception5b"]], ["fc"]),
    "Inception3": lambda m: (["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"],
                             [[f"Mixed_5{c}" for c in "bcd"], [f"Mixed_6{c}" for c in "abcde"],
                              [f"Mixed_7{c}" for c in "abc"]], ["fc"]),
    "DenseNet": lambda m: (["features.conv0", "features.norm0"],
                           [[f"features.denseblock{i}", f"features.transition{i}"] for i in range(1, 5)], ["classifier"]),
    "VGG": lambda m: ([], _split_after_pools(_children(m.features, "features.")), ["classifier.6"]),
    "AlexNet": lambda m: ([], _split_after_pools(_children(m.features, "features.")), ["classifier.6"]),
    "SqueezeNet": lambda m: (lambda s: (s[0], s[1:], ["classifier.1"]))(_split_after_pools(_children(m.features, "features."))),
    "MobileNetV2": lambda m: _features(m, "classifier.1"),
    "MobileNetV3": lambda m: _features(m, "classifier.3"),
    "EfficientNet": lambda m: _features(m, "classifier.1"),
    "MNASNet": lambda m: ([f"layers.{i}" for i in range(8)], [[f"layers.{i}"] for i in range(8, 14)], ["classifier.1"]),
    "ConvNeXt": lambda m: (["features.0"], _pairs(_children(m.features, "features.")[1:]), ["classifier.2"]),
    "SwinTransformer": lambda m: (["features.0"], _pairs(_children(m.features, "features.")[1:]), ["head"]),
    "MaxVit": lambda m: (["stem"], [[n] for n, _ in _children(m.blocks, "blocks.")], ["classifier.5"]),
    "VisionTransformer": lambda m: (["class_token", "conv_proj", "encoder.pos_embedding"],
                                    [[n] for n, _ in _children(m.encoder.layers, "encoder.layers.")], ["heads.head"]),
}
