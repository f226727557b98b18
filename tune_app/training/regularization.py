"""Regularization a model is built with: drop path (stochastic depth) and the head's dropout.

Both are arguments of the model's constructor, named differently by each library:

============  ==================  ========================  ================================
knob          timm                torchvision               segmentation-models-pytorch
============  ==================  ========================  ================================
drop_path     ``drop_path_rate``  ``stochastic_depth_prob``  ``drop_path_rate`` (its timm encoder)
dropout       ``drop_rate``       ``dropout``               (no classifier head: refused)
============  ==================  ========================  ================================

A model whose constructor does not take the argument, or takes it without building a
layer that uses it, is refused where the spec is checked
(:func:`~tune_app.training.models.regularization_problem`), so no trial starts
with a knob that would do nothing. ``None`` and ``0`` leave
the constructor's default, so a spec without these knobs builds exactly the model it
built before.

Example:
    >>> constructor_arguments("timm/resnet18", {"drop_path": 0.1, "dropout": None})
    {'drop_path_rate': 0.1}
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

KNOBS = ("drop_path", "dropout")
_ARGUMENTS = {  # model source -> knob -> its constructor's argument
    "timm": {"drop_path": "drop_path_rate", "dropout": "drop_rate"},
    "torchvision": {"drop_path": "stochastic_depth_prob", "dropout": "dropout"},
    "smp": {"drop_path": "drop_path_rate"},
}
_WHAT = {"drop_path": "drop path (stochastic depth)", "dropout": "dropout before its classifier"}
_WHO_HAS = {
    "drop_path": "timm models take drop_path_rate; torchvision's efficientnet, convnext, swin and maxvit take "
                 "stochastic_depth_prob; smp models pass it to their timm encoder",
    "dropout": "timm models take drop_rate; torchvision's efficientnet, mobilenet, vgg, alexnet, squeezenet, "
               "googlenet, inception, mnasnet and vit take dropout; smp models have no classifier head",
}
PROBE = 0.125  # any rate above 0: what is checked is whether the model uses one


def constructor_arguments(name: str, values: Mapping[str, float | None]) -> dict[str, float]:
    """The keyword arguments that build model ``name`` with ``values`` (knob -> rate; None or 0: the default)."""
    source = name.split("/", 1)[0]
    arguments = _ARGUMENTS.get(source, {})
    kwargs = {}
    for knob, value in values.items():
        if not value:
            continue
        if knob not in arguments:
            raise ValueError(f"{knob}: {name} has no {_WHAT[knob]}")
        kwargs[arguments[knob]] = float(value)
    return kwargs


def drop_path_rates(model: nn.Module) -> list[float]:
    """The rate of every drop-path layer of ``model`` (timm's ``DropPath``, torchvision's ``StochasticDepth``)."""
    rates = []
    for module in model.modules():
        kind = type(module).__name__
        if kind == "DropPath":
            rates.append(float(module.drop_prob))
        elif kind == "StochasticDepth":
            rates.append(float(module.p))
    return rates


def dropout_rates(model: nn.Module) -> list[float]:
    """The model's own ``drop_rate`` (timm applies it in its head) and every ``Dropout`` layer's rate."""
    own = getattr(model, "drop_rate", None)
    rates = [float(own)] if isinstance(own, (int, float)) else []
    return rates + [float(m.p) for m in model.modules() if isinstance(m, nn.Dropout)]


def reaches(model: nn.Module, knob: str) -> bool:
    rates = drop_path_rates(model) if knob == "drop_path" else dropout_rates(model)
    return any(rate > 0 for rate in rates)


def refusal(name: str, knob: str) -> str:
    return (f"{name} has no {_WHAT[knob]}: its constructor takes no such rate, or builds no layer that uses it "
            f"({_WHO_HAS[knob]})")
