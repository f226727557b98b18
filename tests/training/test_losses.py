"""The loss registry: every loss on every task shape, exact references, and optimization.

Contract tests run each registered loss (at its defaults and with every parameter set)
on classification ``[B, C]``, binary segmentation ``[B, 1, H, W]`` and multi-class
segmentation ``[B, C, H, W]``; a new registry entry is tested by adding it.
"""

from __future__ import annotations

import doctest
import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from tune_app.training import losses as losses_module
from tune_app.training.losses import LOSSES, FocalLoss, LossInfo, create_loss

# One non-default value for every declared parameter, so each is exercised.
FULL_PARAMS = {
    "ce": {"label_smoothing": 0.1},
    "bce": {"pos_weight": 2.0, "label_smoothing": 0.1},
    "focal": {"alpha": 0.5, "gamma": 0.5},
    "dice": {"smooth": 0.0, "include_background": False},
    "focal_bce": {"alpha": 0.5, "gamma": 1.0},
    "dice_bce": {"bce_weight": 0.5, "dice_weight": 0.7, "smooth": 0.5, "include_background": False},
    "iou": {"smooth": 0.0, "include_background": False},
    "mse": {},
}
CONFIGS = [pytest.param({"name": name}, id=name) for name in LOSSES] + [
    pytest.param({"name": name, **params}, id=f"{name}-full") for name, params in FULL_PARAMS.items() if params
]
# id -> (task, num_classes, logits shape); num_classes counts the background.
SHAPES = {
    "classification": ("classification", 5, (8, 5)),
    "binary_seg": ("segmentation", 2, (2, 1, 6, 6)),
    "multiclass_seg": ("segmentation", 4, (2, 4, 6, 6)),
}
shapes = pytest.mark.parametrize("shape", list(SHAPES))
configs = pytest.mark.parametrize("config", CONFIGS)


def make_problem(shape: str, seed: int = 0) -> tuple[str, int, torch.Tensor, torch.Tensor]:
    """Task, number of classes, random logits and a shuffled target that holds every class."""
    task, num_classes, logits_shape = SHAPES[shape]
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(logits_shape, generator=g)
    target_shape = logits_shape[:1] + logits_shape[2:]
    n = math.prod(target_shape)
    target = torch.arange(n).remainder(num_classes)[torch.randperm(n, generator=g)].reshape(target_shape)
    return task, num_classes, logits, target


def confident(target: torch.Tensor, channels: int, margin: float = 8.0) -> torch.Tensor:
    """Logits that put ``target`` ahead by ``margin``."""
    if channels == 1:
        return margin * (2.0 * target.float() - 1.0).unsqueeze(1)
    return margin * (2.0 * F.one_hot(target, channels).movedim(-1, 1).float() - 1.0)


def build(config: dict, shape: str) -> torch.nn.Module:
    task, num_classes, _ = SHAPES[shape]
    return create_loss(config, task=task, num_classes=num_classes)


# -------------------------------------------------------------- contract
def test_registry_has_the_design_names_for_both_tasks():
    assert list(LOSSES) == ["ce", "bce", "focal", "focal_bce", "dice", "dice_bce", "iou", "mse"]
    for info in LOSSES.values():
        assert set(info.tasks) == {"classification", "segmentation"} and info.help


@pytest.mark.parametrize("name", list(LOSSES))
def test_declared_parameters_match_the_factory_and_its_defaults_are_valid(name):
    info = LOSSES[name]
    named = {k: p for k, p in inspect.signature(info.factory).parameters.items()
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    assert set(named) == set(info.params)
    assert set(FULL_PARAMS[name]) == set(info.params)  # every parameter is exercised below
    for key, param in info.params.items():
        default = named[key].default
        if default is not None:  # None means "off" (pos_weight)
            assert param.check(default) == default


@configs
@shapes
def test_loss_is_a_finite_scalar_with_gradients(config, shape):
    _task, _num_classes, logits, target = make_problem(shape)
    logits.requires_grad_()
    loss = build(config, shape)(logits, target)
    assert loss.shape == () and loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@configs
@shapes
def test_perfect_logits_score_lower_than_wrong_ones(config, shape):
    _, _num_classes, logits, target = make_problem(shape)
    channels = logits.shape[1]
    wrong = (1 - target) if channels == 1 else (target + 1) % channels
    loss = build(config, shape)
    perfect_loss, wrong_loss = loss(confident(target, channels), target), loss(confident(wrong, channels), target)
    assert perfect_loss < wrong_loss
    assert perfect_loss < loss(logits, target) < wrong_loss  # random logits fall in between


@configs
@shapes
def test_loss_under_bf16_autocast_is_float32_and_matches_full_precision(config, shape):
    _, _, features, target = make_problem(shape)
    channels = features.shape[1]
    weight = torch.randn(channels, channels, requires_grad=True)
    loss = build(config, shape)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        # a linear / 1x1 conv head makes bf16 logits, as a model under autocast would
        logits = F.linear(features, weight) if features.dim() == 2 else F.conv2d(features, weight[..., None, None])
        assert logits.dtype == torch.bfloat16
        value = loss(logits, target)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(weight.grad).all()
    # the same bf16 logits, upcast by hand outside autocast: everything after the cast is float32
    torch.testing.assert_close(value, loss(logits.detach().float(), target))


@configs
def test_seg_loss_drives_a_learnable_mask_to_the_target(config):
    """SGD on free per-pixel logits must recover the mask: each loss optimizes the right thing."""
    mask = torch.zeros(1, 8, 8, dtype=torch.long)
    mask[:, 1:5, 1:5] = 1
    mask[:, 5:8, 3:8] = 2
    for channels, target in ((1, mask.clamp(max=1)), (3, mask)):
        torch.manual_seed(0)
        logits = torch.randn(1, channels, 8, 8, requires_grad=True)
        loss = create_loss(config, task="segmentation", num_classes=max(channels, 2))
        optimizer = torch.optim.SGD([logits], lr=10.0)
        for _ in range(300):
            optimizer.zero_grad()
            loss(logits, target).backward()
            optimizer.step()
        pred = (logits[:, 0] > 0).long() if channels == 1 else logits.argmax(1)
        for c in range(1, max(channels, 2)):  # every foreground class
            iou = ((pred == c) & (target == c)).sum() / ((pred == c) | (target == c)).sum()
            assert iou > 0.9, f"{channels} channel(s), class {c}: IoU {iou:.3f}"


# ------------------------------------------------------- exact references
@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.0])
@pytest.mark.parametrize("shape", [(16, 1), (2, 1, 5, 7)], ids=["classification", "segmentation"])
def test_binary_focal_equals_torchvision_sigmoid_focal_loss(alpha, gamma, shape):
    torch.manual_seed(0)
    logits = 3 * torch.randn(shape)
    target = torch.randint(0, 2, shape[:1] + shape[2:])
    expected = sigmoid_focal_loss(logits, target.unsqueeze(1).float(), alpha=alpha, gamma=gamma, reduction="mean")
    actual = create_loss({"name": "focal", "alpha": alpha, "gamma": gamma}, "segmentation", 2)(logits, target)
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(16, 10), (2, 4, 5, 7)], ids=["classification", "segmentation"])
def test_focal_with_gamma_zero_and_alpha_one_is_cross_entropy(shape):
    torch.manual_seed(0)
    logits = torch.randn(shape)
    target = torch.randint(0, shape[1], shape[:1] + shape[2:])
    torch.testing.assert_close(FocalLoss(alpha=1.0, gamma=0.0)(logits, target), F.cross_entropy(logits, target))


def test_softmax_focal_matches_its_formula_and_downweights_easy_examples():
    logits = torch.tensor([[4.0, 0.0], [0.0, 0.5]])
    target = torch.tensor([0, 0])
    p = torch.softmax(logits, dim=1)[:, 0]
    expected = (-0.25 * (1 - p) ** 2 * torch.log(p)).mean()
    torch.testing.assert_close(FocalLoss(alpha=0.25, gamma=2.0)(logits, target), expected)
    easy, hard = (1 - p) ** 2  # the modulating factor of each example
    assert easy < hard  # the confident, correct example is scaled down more


@pytest.mark.parametrize("channels", [1, 4])
def test_focal_with_gamma_below_one_has_finite_gradients_when_certain(channels):
    target = torch.tensor([0, 1, 1, 0])
    logits = confident(target, channels, margin=60.0).requires_grad_()  # p_t rounds to 1.0
    create_loss({"name": "focal", "gamma": 0.5}, "classification", 4)(logits, target).backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("shape", [(16, 10), (2, 4, 5, 7)], ids=["classification", "segmentation"])
def test_ce_equals_torch_cross_entropy(label_smoothing, shape):
    torch.manual_seed(0)
    logits = torch.randn(shape)
    target = torch.randint(0, shape[1], shape[:1] + shape[2:])
    actual = create_loss({"name": "ce", "label_smoothing": label_smoothing}, "classification", shape[1])(logits, target)
    torch.testing.assert_close(actual, F.cross_entropy(logits, target, label_smoothing=label_smoothing))


def test_ce_on_one_channel_is_binary_cross_entropy_with_halfway_smoothing():
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])  # [1, 1, 2, 2]
    target = torch.tensor([[[1, 0], [0, 1]]])
    y = target.unsqueeze(1).float()
    plain = create_loss({"name": "ce"}, "segmentation", 2)(logits, target)
    torch.testing.assert_close(plain, F.binary_cross_entropy_with_logits(logits, y))
    smooth = create_loss({"name": "ce", "label_smoothing": 0.2}, "segmentation", 2)(logits, target)
    torch.testing.assert_close(smooth, F.binary_cross_entropy_with_logits(logits, y * 0.8 + 0.1))


@pytest.mark.parametrize("params", [{}, {"pos_weight": 3.0}, {"label_smoothing": 0.2}], ids=str)
@pytest.mark.parametrize("shape", [(16, 10), (2, 1, 5, 7), (2, 4, 5, 7)], ids=["classification", "binary", "multiclass"])
def test_bce_equals_torch_bce_on_the_one_hot_target(params, shape):
    torch.manual_seed(0)
    logits = torch.randn(shape)
    target = torch.randint(0, max(shape[1], 2), shape[:1] + shape[2:])
    one_hot = target.unsqueeze(1).float() if shape[1] == 1 else F.one_hot(target, shape[1]).movedim(-1, 1).float()
    s = params.get("label_smoothing", 0.0)
    pos_weight = torch.tensor(params["pos_weight"]) if "pos_weight" in params else None
    expected = F.binary_cross_entropy_with_logits(logits, one_hot * (1 - s) + s / 2, pos_weight=pos_weight)
    torch.testing.assert_close(create_loss({"name": "bce", **params}, "segmentation", 4)(logits, target), expected)


# Tiny problems whose probabilities are round numbers, for losses computed by hand.
# Binary, [1, 1, 2, 2]: p = sigmoid(logits) = [0.5, 0.75, 0.25, 0.9] against mask [0, 1, 0, 1].
BINARY_LOGITS = torch.log(torch.tensor([[[[1.0, 3.0], [1 / 3, 9.0]]]]))  # logit(p) = log(p / (1 - p))
BINARY_TARGET = torch.tensor([[[0, 1], [0, 1]]])
# Three classes, [2, 3]: p = softmax(logits) = [0.5, 0.3, 0.2] with class 0, [0.1, 0.6, 0.3] with class 1.
MULTI_LOGITS = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]))
MULTI_TARGET = torch.tensor([0, 1])

# Binary: I = 0.75 + 0.9 = 1.65, sum(p) = 2.4, sum(y) = 2.
# Three classes, per class (I, sum p, sum y): (0.5, 0.6, 1), (0.6, 0.9, 1), (0, 0.5, 0).
HAND_COMPUTED = [
    ("dice", {"smooth": 0.0}, "binary", 1 - 3.3 / 4.4),                      # 0.25
    ("dice", {"smooth": 1.0}, "binary", 1 - 4.3 / 5.4),
    ("dice", {"smooth": 0.0}, "multi", 1 - (1.0 / 1.6 + 1.2 / 1.9 + 0.0) / 3),
    ("dice", {"smooth": 1.0}, "multi", 1 - (2.0 / 2.6 + 2.2 / 2.9 + 1.0 / 1.5) / 3),
    ("dice", {"smooth": 0.0, "include_background": False}, "multi", 1 - (1.2 / 1.9 + 0.0) / 2),
    ("dice", {"smooth": 0.0, "include_background": False}, "binary", 1 - 3.3 / 4.4),  # one channel: no-op
    ("iou", {"smooth": 0.0}, "binary", 1 - 1.65 / 2.75),                      # 0.4
    ("iou", {"smooth": 1.0}, "binary", 1 - 2.65 / 3.75),
    ("iou", {"smooth": 0.0}, "multi", 1 - (0.5 / 1.1 + 0.6 / 1.3 + 0.0) / 3),
    ("iou", {"smooth": 1.0}, "multi", 1 - (1.5 / 2.1 + 1.6 / 2.3 + 1.0 / 1.5) / 3),
    ("iou", {"smooth": 1.0, "include_background": False}, "multi", 1 - (1.6 / 2.3 + 1.0 / 1.5) / 2),
    ("mse", {}, "binary", (0.25 + 0.0625 + 0.0625 + 0.01) / 4),               # 0.09625
    ("mse", {}, "multi", ((0.25 + 0.09 + 0.04) + (0.01 + 0.16 + 0.09)) / 6),
]


@pytest.mark.parametrize("name, params, problem, expected", HAND_COMPUTED,
                         ids=[f"{n}-{p}-{s}" for n, s, p, _ in HAND_COMPUTED])
def test_overlap_and_mse_losses_equal_hand_computed_values(name, params, problem, expected):
    logits, target = (BINARY_LOGITS, BINARY_TARGET) if problem == "binary" else (MULTI_LOGITS, MULTI_TARGET)
    actual = create_loss({"name": name, **params}, "segmentation", 3)(logits, target)
    torch.testing.assert_close(actual, torch.tensor(expected))


@pytest.mark.parametrize("name", ["dice", "iou"])
def test_smooth_lifts_the_score_of_a_class_absent_from_target_and_prediction(name):
    # class 2 is nowhere in the target and barely predicted: with smooth it counts as (almost) right
    logits = torch.tensor([[9.0, 0.0, -9.0], [0.0, 9.0, -9.0]])
    target = torch.tensor([0, 1])
    loss = {s: create_loss({"name": name, "smooth": s}, "classification", 3)(logits, target) for s in (0.0, 1.0)}
    assert loss[0.0] > 0.33 and loss[1.0] < 0.01


@pytest.mark.parametrize("problem", ["binary", "multi"])
def test_dice_bce_weight_endpoints_are_the_pure_losses(problem):
    logits, target = (BINARY_LOGITS, BINARY_TARGET) if problem == "binary" else (MULTI_LOGITS, MULTI_TARGET)

    def loss(config: dict) -> torch.Tensor:
        return create_loss(config, "segmentation", 3)(logits, target)

    torch.testing.assert_close(loss({"name": "dice_bce", "dice_weight": 0.0}), loss({"name": "ce"}))
    torch.testing.assert_close(loss({"name": "dice_bce", "bce_weight": 0.0, "smooth": 0.3}),
                               loss({"name": "dice", "smooth": 0.3}))
    both = loss({"name": "dice_bce"})  # default weights 1 and 1: the chapter's BCE + Dice
    torch.testing.assert_close(both, loss({"name": "ce"}) + loss({"name": "dice"}))


@pytest.mark.parametrize("config", [
    pytest.param({"name": "ce", "label_smoothing": 0.2}, id="ce"),
    pytest.param({"name": "focal", "alpha": 0.5, "gamma": 2.0}, id="focal-alpha-half"),
    pytest.param({"name": "dice", "include_background": False}, id="dice"),
    pytest.param({"name": "iou", "include_background": False, "smooth": 0.0}, id="iou"),
    pytest.param({"name": "dice_bce", "include_background": False}, id="dice_bce"),
    pytest.param({"name": "mse"}, id="mse"),
])
def test_one_channel_head_equals_two_channel_head_with_logits_zero_and_z(config):
    """Binary (sigmoid) and two-class (softmax) readings of one problem agree where the formulas say so."""
    torch.manual_seed(0)
    z = 2 * torch.randn(2, 1, 5, 5)
    target = torch.randint(0, 2, (2, 5, 5))
    loss = create_loss(config, "segmentation", 2)
    torch.testing.assert_close(loss(z, target), loss(torch.cat([torch.zeros_like(z), z], dim=1), target))


# ---------------------------------------------------------------- errors
def test_unknown_loss_is_an_error_listing_the_known_names():
    with pytest.raises(ValueError, match="unknown loss 'dice2' \\(did you mean 'dice'\\?\\); valid: ce, bce, focal, focal_bce, dice, dice_bce, iou, mse"):
        create_loss({"name": "dice2"}, "classification", 3)


def test_loss_restricted_to_a_task_names_the_task_and_the_supported_ones(monkeypatch):
    monkeypatch.setitem(LOSSES, "cls_only", LossInfo(losses_module.CrossEntropyLoss, tasks=("classification",)))
    assert create_loss({"name": "cls_only"}, "classification", 3)
    with pytest.raises(ValueError, match="loss 'cls_only' does not apply to task 'segmentation'; it supports classification"):
        create_loss({"name": "cls_only"}, "segmentation", 3)


def test_unknown_or_out_of_range_parameter_is_an_error():
    with pytest.raises(ValueError, match="loss 'focal' has no parameter 'gama' \\(did you mean 'gamma'\\?\\); its parameters: alpha, gamma"):
        create_loss({"name": "focal", "gama": 2.0}, "classification", 3)
    with pytest.raises(ValueError, match="loss 'mse' has no parameter 'smooth'; its parameters: none"):
        create_loss({"name": "mse", "smooth": 1.0}, "classification", 3)
    with pytest.raises(ValueError, match="loss 'focal': alpha must be <= 1.0, got 1.5"):
        create_loss({"name": "focal", "alpha": 1.5}, "classification", 3)
    with pytest.raises(ValueError, match="loss 'dice_bce': include_background must be true or false"):
        create_loss({"name": "dice_bce", "include_background": "yes"}, "segmentation", 3)


@pytest.mark.parametrize("name", list(LOSSES))
def test_mask_with_a_channel_dim_is_a_shape_error(name):
    loss = create_loss({"name": name}, "segmentation", 2)
    with pytest.raises(ValueError, match=r"logits \(2, 1, 4, 4\) and target \(2, 1, 4, 4\) do not match"):
        loss(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4, dtype=torch.long))


def test_module_docstring_example_runs():
    assert doctest.testmod(losses_module).failed == 0


# ------------------------------------------------- the chapter's code, transcribed
class ChapterDiceBCELoss(torch.nn.Module):
    """The chapter's DiceBCELoss, as written there (binary masks, sigmoid on the inputs)."""

    def forward(self, inputs, targets, smooth=1):
        inputs = torch.sigmoid(inputs)
        inputs = inputs.view(-1)
        targets = targets.view(-1)
        intersection = (inputs * targets).sum()
        dice_loss = 1 - (2. * intersection + smooth) / (inputs.sum() + targets.sum() + smooth)
        BCE = F.binary_cross_entropy(inputs, targets, reduction="mean")
        Dice_BCE = BCE + dice_loss
        return Dice_BCE


class ChapterFocalLoss(torch.nn.Module):
    """The chapter's FocalLoss, as written there: ALPHA = 0.8, GAMMA = 2 on the batch-mean BCE."""

    def forward(self, inputs, targets, alpha=0.8, gamma=2, smooth=1):
        inputs = torch.sigmoid(inputs)
        inputs = inputs.view(-1)
        targets = targets.view(-1)
        BCE = F.binary_cross_entropy(inputs, targets, reduction="mean")
        BCE_EXP = torch.exp(-BCE)
        focal_loss = alpha * (1 - BCE_EXP) ** gamma * BCE
        return focal_loss


CHAPTER_SHAPES = [(2, 1, 6, 6), (4, 1, 16, 16), (1, 1, 32, 24), (8, 1, 3, 5)]


@pytest.mark.parametrize("shape", CHAPTER_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize(("name", "chapter"), [("dice_bce", ChapterDiceBCELoss), ("focal_bce", ChapterFocalLoss)])
def test_the_chapters_losses_exactly_on_binary_masks(name, chapter, shape):
    g = torch.Generator().manual_seed(sum(shape))
    # unsure to confident logits; much beyond |z| ~ 8 the chapter's sigmoid-then-log loses float32
    # digits (sigmoid(17) is 1.0, and its BCE clamps log 0 at -100) where ours, on the logits, does not
    for scale in (0.5, 1.0, 2.0):
        logits = scale * torch.randn(shape, generator=g)
        mask = (torch.rand(shape[:1] + shape[2:], generator=g) < 0.3).long()
        ours = create_loss({"name": name}, "segmentation", 2)(logits, mask)
        theirs = chapter()(logits, mask.unsqueeze(1).float())
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_dice_bce_weights_scale_each_term():
    logits, target = BINARY_LOGITS, BINARY_TARGET

    def loss(config: dict) -> torch.Tensor:
        return create_loss(config, "segmentation", 2)(logits, target)

    ce, dice = loss({"name": "ce"}), loss({"name": "dice"})
    torch.testing.assert_close(loss({"name": "dice_bce"}), ce + dice)
    torch.testing.assert_close(loss({"name": "dice_bce", "bce_weight": 0.5, "dice_weight": 2.0}), 0.5 * ce + 2 * dice)
    torch.testing.assert_close(loss({"name": "dice_bce", "dice_weight": 0.0}), ce)


def test_focal_bce_differs_from_the_per_element_focal_loss():
    logits, target = BINARY_LOGITS, BINARY_TARGET
    per_element = create_loss({"name": "focal", "alpha": 0.8, "gamma": 2.0}, "segmentation", 2)(logits, target)
    batch_mean = create_loss({"name": "focal_bce"}, "segmentation", 2)(logits, target)
    assert not torch.allclose(per_element, batch_mean, rtol=0.05)


def test_every_loss_says_its_formula_in_one_line():
    for name, info in LOSSES.items():
        assert info.help and "\n" not in info.help and any(c in info.help for c in "=+-^("), name
