"""Every registered loss: builds, gives a finite scalar with gradients; focal's formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tune_app.training.losses import LOSSES, FocalLoss, create_loss


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_loss_gives_a_finite_scalar_with_gradients(name):
    torch.manual_seed(0)
    logits = torch.randn(8, 5, requires_grad=True)
    target = torch.randint(0, 5, (8,))
    loss = create_loss({"name": name}, task="classification", num_classes=5)(logits, target)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_focal_with_gamma_zero_and_alpha_one_is_cross_entropy():
    torch.manual_seed(0)
    logits, target = torch.randn(16, 10), torch.randint(0, 10, (16,))
    assert torch.allclose(FocalLoss(alpha=1.0, gamma=0.0)(logits, target), F.cross_entropy(logits, target))


def test_focal_matches_its_formula_and_downweights_easy_examples():
    logits = torch.tensor([[4.0, 0.0], [0.0, 0.5]])
    target = torch.tensor([0, 0])
    p = torch.softmax(logits, dim=1)[:, 0]
    expected = (-0.25 * (1 - p) ** 2 * torch.log(p)).mean()
    assert torch.allclose(FocalLoss(alpha=0.25, gamma=2.0)(logits, target), expected)
    easy, hard = (-(1 - p) ** 2 * torch.log(p)) / -torch.log(p)
    assert easy < hard  # the confident, correct example is scaled down more


def test_label_smoothing_reaches_cross_entropy():
    logits, target = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0])
    smooth = create_loss({"name": "ce", "label_smoothing": 0.2}, "classification", 3)(logits, target)
    assert torch.allclose(smooth, F.cross_entropy(logits, target, label_smoothing=0.2))


def test_unknown_loss_and_wrong_task_are_errors():
    with pytest.raises(ValueError, match="unknown loss 'dice2'; known: ce, focal"):
        create_loss({"name": "dice2"}, "classification", 3)
    with pytest.raises(ValueError, match="does not apply to task 'segmentation'"):
        create_loss({"name": "ce"}, "segmentation", 3)
