"""The parameter schema and the one way options and names are checked."""

from __future__ import annotations

import pytest

from tune_app.schema import OptionError, Param, check_options, did_you_mean, unknown_name, unknown_option


def test_check_options_returns_canonical_values():
    schema = {"gamma": Param(float, low=0), "steps": Param(int, low=1)}
    assert check_options("x", schema, {"gamma": 2, "steps": 3}) == {"gamma": 2.0, "steps": 3}
    assert isinstance(check_options("x", schema, {"gamma": 2})["gamma"], float)


def test_an_unknown_option_names_the_owner_the_key_and_the_valid_ones():
    with pytest.raises(OptionError) as info:
        check_options("loss 'focal'", {"alpha": Param(float), "gamma": Param(float)}, {"gama": 1.0})
    assert str(info.value) == ("loss 'focal' has no parameter 'gama' (did you mean 'gamma'?); "
                               "its parameters: alpha, gamma")
    assert info.value.unknown and info.value.key == "gama"


def test_a_bad_value_keeps_the_reason_apart_for_paths():
    with pytest.raises(OptionError) as info:
        check_options("'asha'", {"grace_period": Param(int, low=1)}, {"grace_period": 0}, what="option")
    assert str(info.value) == "'asha': grace_period must be >= 1, got 0"
    assert not info.value.unknown and info.value.key == "grace_period" and info.value.reason == "must be >= 1, got 0"


def test_an_owner_without_options_says_none():
    assert unknown_option("loss 'mse'", "smooth", {}) == "loss 'mse' has no parameter 'smooth'; its parameters: none"


def test_unknown_names_read_alike_everywhere():
    assert unknown_name("cosin", ["step", "cosine"], "scheduler") == ("unknown scheduler 'cosin' (did you mean "
                                                                      "'cosine'?); valid: step, cosine")
    assert unknown_name("zzz", ["a", "b"]) == "unknown name 'zzz'; valid: a, b"
    assert did_you_mean("lrate", ["lr", "weight_decay"]) == " (did you mean 'lr'?)"
