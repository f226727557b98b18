"""The optimizer's parameter groups when the backbone learns at another pace than the head.

Two knobs give each group an ``lr_scale``, its learning rate as a multiple of the searched ``lr``:

- ``layer_decay`` d: layer-wise LR decay (BEiT, MAE, ConvNeXt fine-tuning). The layers are
  grouped as timm's own optimizer factory groups them for ``layer_decay`` (the model's
  ``group_matcher``); a layer n groups below the head learns at ``lr * d**n``.
- ``head_lr_mult`` m: the head (the new classifier; a segmentation model's decoder and head,
  as :mod:`~tune_app.training.freeze` names them) learns at ``m`` times its lr (with layer
  decay the head is the top group, at ``lr``: it then learns at ``m * lr``).

timm's schedulers read ``lr_scale``, torch's do not: each group's ``lr`` is set to
``lr * lr_scale`` before the LR schedule is built, and every torch schedule keeps the
ratios (it follows each group's own initial lr; OneCycle and Cyclic take a list per group).
Biases and norms get no weight decay, as timm's factory does for every optimizer here.

Example:
    >>> from tune_app.training.models import create_model
    >>> model = create_model("timm/test_resnet", num_classes=3)
    >>> groups = parameter_groups(model, lr=0.01, weight_decay=0.05, layer_decay=0.5, head_lr_mult=10)
    >>> sorted({g["lr_scale"] for g in groups})
    [0.03125, 0.0625, 0.125, 0.25, 0.5, 10.0]
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .freeze import stage_plan


def layer_decay_problem(model: nn.Module, name: str) -> str | None:
    """Why ``model`` (called ``name``) cannot take ``layer_decay``, or None when it can."""
    if hasattr(model, "group_matcher"):
        return None
    return (f"{name} has no layer groups for layer-wise lr decay (timm models define them, torchvision and smp "
            f"models do not); use a timm/ model, or head_lr_mult to let the head learn faster than the backbone")


def uses_groups(layer_decay: float | None, head_lr_mult: float) -> bool:
    """Whether the knobs ask for groups beyond timm's usual two (decay and no decay)."""
    return layer_decay is not None or head_lr_mult != 1.0


def parameter_groups(model: nn.Module, lr: float, weight_decay: float, *, layer_decay: float | None = None,
                     head_lr_mult: float = 1.0) -> list[dict[str, Any]]:
    """The trainable parameters of ``model`` in groups, each with its ``lr_scale`` and ``lr``.

    Raises:
        ValueError: ``layer_decay`` for a model without layer groups.
    """
    from timm.optim import param_groups_layer_decay, param_groups_weight_decay

    no_decay = model.no_weight_decay() if hasattr(model, "no_weight_decay") else ()
    if layer_decay == 1.0 and not hasattr(model, "group_matcher"):
        layer_decay = None  # 1 is off: every model takes it (with layer groups, PBT may move it off 1)
    if layer_decay is not None:
        problem = layer_decay_problem(model, type(model).__name__)
        if problem:
            raise ValueError(problem)
        groups = param_groups_layer_decay(model, weight_decay, no_weight_decay_list=no_decay, layer_decay=layer_decay)
    else:
        groups = param_groups_weight_decay(model, weight_decay, no_weight_decay_list=no_decay)
    head = {id(p) for n, p in model.named_parameters() if n in set(stage_plan(model).head)} if head_lr_mult != 1 else set()
    split = []
    for group in groups:
        scale = float(group.get("lr_scale", 1.0))
        for in_head in (False, True):
            params = [p for p in group["params"] if (id(p) in head) == in_head]
            if params:
                group_scale = scale * (head_lr_mult if in_head else 1.0)
                split.append({**group, "params": params, "lr_scale": group_scale, "lr": lr * group_scale})
    return split

