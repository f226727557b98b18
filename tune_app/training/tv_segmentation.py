"""torchvision's segmentation models behind the interface every other model has: logits out."""

from __future__ import annotations

import torch
from torch import nn


class TorchvisionSegmentation(nn.Module):
    """A torchvision segmentation model returning its ``out`` logits instead of a dict."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["out"]
