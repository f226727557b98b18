"""Optimizer registry over timm's optimizer factory, with the parameters each optimizer takes.

timm's ``create_optimizer_v2`` already does what a careful fine-tuner wants: no
weight decay on biases and normalization weights, and only the keyword arguments
each optimizer class accepts (``momentum`` reaches SGD, not AdamW). Each entry here
declares, like timm's ``OptimInfo``, the further parameters its class takes from YAML
(``betas``, ``eps``, ``nesterov``, ...), with their valid ranges, so the spec layer
rejects a bad value before any trial starts. ``lr``, ``weight_decay`` and ``momentum``
are knobs of their own.

Example:
    >>> from torch import nn
    >>> create_optimizer({"name": "adamw", "betas": [0.9, 0.95]}, nn.Linear(2, 2), lr=1e-3).defaults["betas"]
    (0.9, 0.95)
    >>> create_optimizer("sgd", nn.Linear(2, 2), lr=0.1).defaults["nesterov"]
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn
from torch.optim import Optimizer

from ..schema import Param, fraction, named_options, positive
from .param_groups import parameter_groups, uses_groups


@dataclass(frozen=True)
class OptimizerInfo:
    """A registered optimizer: timm's name for it, and the parameters it takes from YAML.

    Attributes:
        timm_name: The ``opt`` name of ``timm.optim.create_optimizer_v2``.
        params: Keyword arguments of the optimizer class, with their schemas.
        uses_momentum: Whether the ``momentum`` knob reaches it.
        help: One line for ``tune-app list``.
    """

    timm_name: str
    params: dict[str, Param] = field(default_factory=dict)
    uses_momentum: bool = False
    help: str = ""


def _pair(value: Any) -> Any:
    if isinstance(value, list) and len(value) != 2:
        raise ValueError(f"must be [beta1, beta2], got {value!r}")
    return value


_BETA = fraction(high_open=True)
_BETAS = Param(list, item=_BETA, min_items=2, coerce=_pair,
               help="coefficients of the running averages of the gradient and its square")
_EPS = positive(help="added to the denominator for numerical stability")


OPTIMIZERS: dict[str, OptimizerInfo] = {
    "sgd": OptimizerInfo("sgd", {"nesterov": Param(bool, help="Nesterov momentum (default true)")},
                         uses_momentum=True, help="SGD with Nesterov momentum"),
    "momentum": OptimizerInfo("momentum", {"nesterov": Param(bool, help="Nesterov momentum (default false)")},
                              uses_momentum=True, help="SGD with plain momentum"),
    "adam": OptimizerInfo("adam", {"betas": _BETAS, "eps": _EPS}, help="Adam (L2 weight decay)"),
    "adamw": OptimizerInfo("adamw", {"betas": _BETAS, "eps": _EPS}, help="AdamW (decoupled weight decay)"),
    "nadamw": OptimizerInfo("nadamw", {"betas": _BETAS, "eps": _EPS}, help="NAdam with decoupled weight decay"),
    "rmsprop": OptimizerInfo("rmsproptf", {"alpha": fraction(high_open=True, help="smoothing constant (default 0.9)"),
                                           "eps": _EPS},
                             uses_momentum=True, help="RMSprop, TensorFlow style (timm's rmsproptf)"),
    "lamb": OptimizerInfo("lamb", {"betas": _BETAS, "eps": _EPS}, help="LAMB (layer-wise adaptive large batch)"),
    "lion": OptimizerInfo("lion", {"betas": _BETAS}, help="Lion (sign updates; use a 3-10x smaller lr than AdamW)"),
}


def optimizer_options(config: str | Mapping[str, Any]) -> dict[str, Any]:
    """``"adamw"`` or ``{"name": "adamw", **params}`` -> the checked ``{"name": ..., **params}``.

    Raises:
        ValueError: An unknown optimizer, or an unknown or out-of-range parameter.
    """
    return named_options(config, OPTIMIZERS, "optimizer")


def create_optimizer(config: str | Mapping[str, Any], model: nn.Module, lr: float, weight_decay: float = 0.0,
                     momentum: float = 0.9, *, layer_decay: float | None = None,
                     head_lr_mult: float = 1.0) -> Optimizer:
    """Build the optimizer ``config`` names over the trainable parameters of ``model``.

    ``layer_decay`` and ``head_lr_mult`` give groups of parameters their own lr
    (:mod:`~tune_app.training.param_groups`).
    """
    from timm.optim import create_optimizer_v2

    kwargs = optimizer_options(config)
    info = OPTIMIZERS[kwargs.pop("name")]
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    if info.uses_momentum:
        kwargs["momentum"] = momentum
    if uses_groups(layer_decay, head_lr_mult):
        groups = parameter_groups(model, lr, weight_decay, layer_decay=layer_decay, head_lr_mult=head_lr_mult)
        return create_optimizer_v2(groups, opt=info.timm_name, lr=lr, weight_decay=weight_decay, **kwargs)
    return create_optimizer_v2(model, opt=info.timm_name, lr=lr, weight_decay=weight_decay, **kwargs)
