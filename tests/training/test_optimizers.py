"""The optimizer registry: every entry builds, and every declared parameter reaches its class."""

from __future__ import annotations

import pytest
from torch import nn

from tune_app.training.optimizers import OPTIMIZERS, create_optimizer, optimizer_options

# One valid, non-default value per declared parameter, and where the optimizer keeps it.
VALUES = {"betas": ([0.8, 0.95], (0.8, 0.95)), "eps": (1e-5, 1e-5), "nesterov": (False, False), "alpha": (0.8, 0.8)}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_optimizer_builds_over_the_trainable_parameters(name):
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    model[1].weight.requires_grad_(False)
    optimizer = create_optimizer(name, model, lr=0.01, weight_decay=0.1, momentum=0.8)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    assert len(params) == 3  # the frozen BatchNorm weight is not optimized
    decays = sorted(group["weight_decay"] for group in optimizer.param_groups)
    assert decays == [0.0, 0.1]  # biases and norms without weight decay
    assert ("momentum" in optimizer.defaults) == OPTIMIZERS[name].uses_momentum
    if OPTIMIZERS[name].uses_momentum:
        assert optimizer.defaults["momentum"] == 0.8


@pytest.mark.parametrize(("name", "key"), [(n, k) for n, info in sorted(OPTIMIZERS.items()) for k in info.params])
def test_every_declared_parameter_reaches_the_optimizer(name, key):
    given, kept = VALUES[key]
    optimizer = create_optimizer({"name": name, key: given}, nn.Linear(2, 2), lr=0.01)
    assert optimizer.defaults[key] == pytest.approx(kept)


def test_sgd_is_nesterov_and_momentum_is_not_by_default():
    assert create_optimizer("sgd", nn.Linear(2, 2), lr=0.1).defaults["nesterov"] is True
    assert create_optimizer("momentum", nn.Linear(2, 2), lr=0.1).defaults["nesterov"] is False


@pytest.mark.parametrize(("config", "message"), [
    ("adamm", "unknown optimizer 'adamm' (did you mean 'adam'?); valid: sgd, momentum, adam"),
    ({"name": "adamw", "beta": [0.9, 0.9]}, "optimizer 'adamw' has no parameter 'beta' (did you mean 'betas'?)"),
    ({"name": "adamw", "betas": [0.9]}, "optimizer 'adamw': betas must be [beta1, beta2], got [0.9]"),
    ({"name": "adamw", "betas": [0.9, 0.9, 0.9]}, "optimizer 'adamw': betas must be [beta1, beta2]"),
    ({"name": "lion", "betas": [0.9, 1.0]}, "optimizer 'lion': betas item 1: must be < 1.0, got 1.0"),
    ({"name": "sgd", "eps": 1e-8}, "optimizer 'sgd' has no parameter 'eps'; its parameters: nesterov"),
])
def test_bad_optimizer_options_name_the_problem(config, message):
    with pytest.raises(ValueError) as info:
        optimizer_options(config)
    assert message in str(info.value)
