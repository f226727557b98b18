"""Precise BatchNorm statistics: recompute the running mean and variance before a model is judged.

A BatchNorm layer normalizes with batch statistics while it trains and with its running
averages in evaluation. Those averages move by ``momentum`` per step: torchvision's
MobileNetV3 uses 0.01, so after a couple of hundred steps they still hold mostly their
initial values, and a model whose training loss fell scores at chance on validation.
Trial schedulers judge trials on exactly such early epochs. Like Detectron2's PreciseBN
and timm's BN utilities, :func:`recompute` resets the statistics of the layers that train
and averages them over training batches (forward only, no gradients, everything but
BatchNorm in evaluation mode).

``train.precise_bn``: ``auto`` (the default) recomputes while the layers have taken fewer
than ``3 / momentum`` steps (an exponential average needs about that many to forget its
start), over about 512 training images; ``off`` never; a number N always, over N batches.

Example:
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.01))
    >>> layers = training_batch_norms(net)
    >>> len(layers), needs_recompute(layers, steps=100), needs_recompute(layers, steps=400)
    (1, True, False)
    >>> recompute(net, layers, [torch.randn(8, 3, 6, 6) for _ in range(4)])
    4
    >>> int(layers[0].num_batches_tracked), layers[0].momentum   # an average of 4 batches; momentum back
    (4, 0.01)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

CONVERGED_AFTER = 3.0  # steps x momentum at which an exponential average has forgotten its start (e^-3)
AUTO_IMAGES = 512  # `auto` averages over this many training images (whole batches, at most an epoch)


def training_batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers that train: tracking running statistics, with weights that learn.

    Frozen ones (``FrozenBatchNorm2d``, or weights without gradients) keep their statistics.
    """
    layers = []
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats and (
                module.weight is None or module.weight.requires_grad):
            layers.append(module)
    return layers


def needs_recompute(layers: list[nn.modules.batchnorm._BatchNorm], steps: int) -> bool:
    """Whether ``steps`` training steps are too few for the layers' running averages to have converged."""
    momenta = [layer.momentum for layer in layers if layer.momentum is not None]
    return bool(momenta) and steps * min(momenta) < CONVERGED_AFTER


def recompute(model: nn.Module, layers: list[nn.modules.batchnorm._BatchNorm], batches: Iterable[torch.Tensor],
              autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext) -> int:
    """Reset ``layers``' statistics and average them over ``batches`` (their true mean); returns the count.

    Only BatchNorm runs in training mode (dropout and the rest evaluate); no gradients.
    """
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    was_training = model.training
    model.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average: each batch weighs the same
        layer.train()
    count = 0
    try:
        with torch.no_grad():
            for images in batches:
                with autocast():
                    model(images)
                count += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train(was_training)
    return count
