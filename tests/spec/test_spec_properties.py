"""Property-based tests of the spec layer: whatever the input, a clean answer.

Hypothesis mutates a valid spec (random keys at random depths, values of random
types, random distributions and registry options, random ``--set`` overrides, random
edits of the YAML text) and checks that the loader either

* accepts it, and then the resolved spec (``to_dict``) dumped with
  ``yaml.safe_dump`` and loaded again validates to an equal spec, or
* raises :class:`SpecError` whose problems each carry a non-empty message and a
  well-formed dotted path (``tune.resources.gpu``, ``search.loss.choice[1].gamma``).

Any other exception is a failure. The model stays ``timm/test_resnet`` so that a
searched ``freeze_depth`` (which builds a model skeleton) stays fast.
"""

from __future__ import annotations

import copy
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from tune_app.errors import SpecError
from tune_app.schema import Param
from tune_app.spec import ExperimentSpec, apply_override, load_spec, validate_spec
from tune_app.spec.space import DISTRIBUTIONS
from tune_app.sweep.strategies import SEARCH_ALGS, TRIAL_SCHEDULERS
from tune_app.training import KNOBS, METRICS, TASKS
from tune_app.training.config import AMP_MODES
from tune_app.training.datasets import DATASETS
from tune_app.training.losses import LOSSES
from tune_app.training.lr_schedules import LR_SCHEDULES
from tune_app.training.optimizers import OPTIMIZERS

from ..conftest import TINY_SPEC

FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=10),  # a slow 2-core machine; a hang is still caught
    derandomize=True,  # the same examples on every run and in CI
    database=None,  # write nothing into the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

MODEL = TINY_SPEC["model"]["name"]  # timm/test_resnet: never mutated (freeze_depth builds it)


# ----------------------------------------------------------------- vocabulary
def _section_fields() -> set[str]:
    def keys(model) -> set[str]:  # YAML keys: a field's alias where it has one (tune.scheduler)
        return {field.alias or name for name, field in model.model_fields.items()}

    fields = keys(ExperimentSpec)
    for name in ("data", "model", "train", "tune"):
        fields |= keys(ExperimentSpec.model_fields[name].annotation)
    return fields | {"cpu", "gpu"}


OPTION_PARAMS = sorted({p for registry in (LOSSES, LR_SCHEDULES) for info in registry.values() for p in info.params})
STRATEGY_PARAMS = sorted({p for registry in (SEARCH_ALGS, TRIAL_SCHEDULERS) for info in registry.values()
                          for p in info.params})
KEYS = sorted(_section_fields() | set(KNOBS) | set(DISTRIBUTIONS) | {"default", "log", "name", "choice"}
              | set(OPTION_PARAMS) | set(STRATEGY_PARAMS))
NAMES = sorted(set(LOSSES) | set(LR_SCHEDULES) | set(OPTIMIZERS) | set(SEARCH_ALGS) | set(TRIAL_SCHEDULERS)
               | set(DATASETS) | set(TASKS) | set(AMP_MODES) | {m for ms in METRICS.values() for m in ms}
               | {"all", "auto", "max", "min", "cpu", "cuda", MODEL})

# Keys never contain ".", "[" or "]": such a key cannot be told apart from a path anyway.
_PLAIN = st.characters(blacklist_categories=("Cs",), blacklist_characters=".[]")
keys = st.one_of(st.sampled_from(KEYS), st.text(_PLAIN, min_size=1, max_size=8))
finite = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(st.integers(-3, 10), st.integers(-(2 ** 70), 2 ** 70), finite, st.floats(0, 1),
                    st.sampled_from([0, 1, 1e-3, 0.5, 1.5, 1e300, -0.0]))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.sampled_from(NAMES), st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(keys, inner, max_size=3)), max_leaves=6)


@st.composite
def distributions(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(DISTRIBUTIONS + ("normal",)))
    if kind == "choice":
        args = draw(st.one_of(st.lists(st.one_of(scalars, values), max_size=4), scalars))
    elif kind == "int":
        args = draw(st.one_of(st.lists(st.integers(-3, 12), min_size=2, max_size=2),
                              st.lists(numbers, min_size=0, max_size=3)))
    else:
        args = draw(st.one_of(st.lists(numbers, min_size=2, max_size=2), st.lists(scalars, max_size=3)))
    dist: dict[str, Any] = {kind: args}
    if draw(st.booleans()):
        dist["default"] = draw(st.one_of(numbers, scalars))
    if draw(st.integers(0, 4)) == 0:
        dist["log"] = draw(st.one_of(st.booleans(), scalars))
    if draw(st.integers(0, 6)) == 0:
        dist[draw(keys)] = draw(scalars)
    return dist


@st.composite
def options(draw: Any, registry: dict[str, Any]) -> Any:
    name = draw(st.one_of(st.sampled_from(sorted(registry)), st.sampled_from(NAMES), scalars))
    if draw(st.booleans()):
        return name
    params = sorted({p for info in registry.values() for p in info.params})
    option = {"name": name} if draw(st.integers(0, 5)) else {}
    for key in draw(st.lists(st.one_of(st.sampled_from(params), keys), max_size=3)):
        option[key] = draw(st.one_of(scalars, distributions(), values))
    return option


def knob_values(knob: str) -> st.SearchStrategy[Any]:
    if isinstance(KNOBS.get(knob), dict):  # a family: loss, scheduler, optimizer, augment
        registry = KNOBS[knob]
        one = options(registry)
        family = st.builds(lambda choice, default: {"choice": choice, **default},
                           st.lists(one, max_size=3),
                           st.one_of(st.just({}), st.fixed_dictionaries({"default": scalars})))
        return st.one_of(one, family, values)
    return st.one_of(scalars, distributions(), values)


@st.composite
def strategy_values(draw: Any, registry: dict[str, Any]) -> Any:
    name = draw(st.one_of(st.sampled_from(sorted(registry)), scalars))
    if draw(st.booleans()):
        return name
    params = sorted({p for info in registry.values() for p in info.params})
    return {"name": name, **draw(st.dictionaries(st.one_of(st.sampled_from(params), keys), scalars, max_size=2))}


def valid_values(param: Any) -> st.SearchStrategy[Any]:
    """Values a Param accepts (so that many examples get past validation to the round trip)."""
    if not isinstance(param, Param):  # freeze_depth, scale, chained's schedulers: their own schemas
        if param.kind is int:
            return st.one_of(st.integers(0, 4), st.just("all"))
        return st.just([0.35, 1.0]) if type(param).__name__ == "AreaRange" else st.just(["step"])
    if param.choices is not None:
        return st.sampled_from(param.choices)
    if param.kind is bool:
        return st.booleans()
    if param.kind is list:
        return st.lists(valid_values(param.item or Param(float)), min_size=param.min_items, max_size=3)
    low = -100 if param.low is None else param.low
    high = 100 if param.high is None else param.high
    if param.kind is int:
        return st.integers(int(low) + param.low_open, int(high) - param.high_open)
    return st.floats(low, high, exclude_min=param.low_open, exclude_max=param.high_open)


@st.composite
def valid_distributions(draw: Any, param: Any) -> Any:
    """A fixed value or a distribution over valid values of ``param``."""
    one = valid_values(param)
    kind = draw(st.sampled_from(["fixed", "choice", "range"]))
    if kind == "fixed":
        return draw(one)
    if kind == "choice" or param.kind not in (int, float):
        choices = draw(st.lists(one, min_size=1, max_size=3, unique_by=repr))
        dist = {"choice": choices}
        if draw(st.booleans()):
            dist["default"] = draw(st.sampled_from(choices))
        return dist
    numeric = one if isinstance(param, Param) else st.integers(0, 4)
    low, high = sorted(draw(st.lists(numeric, min_size=2, max_size=2)))
    if param.kind is int:
        dist = {"int": [low, high]}
        if low >= 1 and draw(st.booleans()):
            dist["log"] = True
        return dist
    return {"loguniform" if low > 0 and draw(st.booleans()) else "uniform": [low, high]}


@st.composite
def valid_options(draw: Any, registry: dict[str, Any]) -> Any:
    name = draw(st.sampled_from(sorted(registry)))
    params = registry[name].params
    chosen = draw(st.lists(st.sampled_from(sorted(params)), max_size=2, unique=True)) if params else []
    if not chosen and draw(st.booleans()):
        return name
    return {"name": name, **{p: draw(valid_distributions(params[p])) for p in chosen}}


def valid_knob_values(knob: str) -> st.SearchStrategy[Any]:
    if isinstance(KNOBS[knob], dict):  # a family
        one = valid_options(KNOBS[knob])
        return st.one_of(one, st.lists(one, min_size=1, max_size=3).map(lambda choice: {"choice": choice}))
    return valid_distributions(KNOBS[knob])


# ---------------------------------------------------------------- mutations
def _containers(node: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every dict and list in the spec, with its path, in a fixed order."""
    found = [(path, node)] if isinstance(node, (dict, list)) else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found += _containers(child, (*path, key))
    return found


def _protected(path: tuple) -> bool:
    return path[:2] == ("model", "name")


@st.composite
def mutated_specs(draw: Any) -> dict[str, Any]:
    raw = copy.deepcopy(TINY_SPEC)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["replace", "add", "delete", "knob", "valid_knob", "valid_knob", "tune",
                                   "points"]))
        if op in ("replace", "add", "delete"):
            path, node = draw(st.sampled_from(_containers(raw)))
            if op == "add" and isinstance(node, dict):
                node[draw(keys)] = draw(st.one_of(values, distributions()))
            elif isinstance(node, dict) and node:
                key = draw(st.sampled_from(list(node)))
                if _protected((*path, key)):
                    continue
                if op == "delete":
                    del node[key]
                else:
                    node[key] = draw(st.one_of(values, distributions(), st.just(None)))
            elif isinstance(node, list) and node:
                index = draw(st.integers(0, len(node) - 1))
                if op == "delete":
                    del node[index]
                else:
                    node[index] = draw(st.one_of(values, distributions()))
        elif op in ("knob", "valid_knob"):
            search = raw.setdefault("search", {})
            if not isinstance(search, dict):
                continue
            if op == "knob":
                knob = draw(st.one_of(st.sampled_from(sorted(KNOBS)), keys))
                search[knob] = draw(knob_values(knob))
            else:
                knob = draw(st.sampled_from(sorted(set(KNOBS) - {"optimizer", "batch_size", "hflip", "scale"})))
                search[knob] = draw(valid_knob_values(knob))
        else:
            tune = raw.setdefault("tune", {})
            if not isinstance(tune, dict):
                continue
            if op == "points":
                knob_names = st.sampled_from(sorted(KNOBS))
                tune["points_to_evaluate"] = draw(st.lists(
                    st.dictionaries(knob_names, st.one_of(scalars, values), max_size=4), max_size=2))
            else:
                key = draw(st.sampled_from(["search_alg", "scheduler", "num_samples", "max_concurrent",
                                            "checkpoint_every", "seed", "resources"]))
                if key in ("search_alg", "scheduler"):
                    tune[key] = draw(strategy_values(SEARCH_ALGS if key == "search_alg" else TRIAL_SCHEDULERS))
                elif key == "resources":
                    tune[key] = draw(st.dictionaries(st.sampled_from(["cpu", "gpu"]),
                                                     st.one_of(numbers, st.just("auto")), max_size=2))
                else:
                    tune[key] = draw(st.one_of(numbers, scalars))
    return raw


# ------------------------------------------------------------------ checking
_INDEX = re.compile(r"\[\d+\]")
_PART = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(\d+)\]")  # a dotted path's names and [i] indices


def assert_well_formed(error: SpecError, plain_keys: bool = True) -> None:
    """Each problem: a non-empty message at a dotted path (names, '.' between, [i] for list items).

    ``plain_keys``: no key of the input holds '.', '[' or ']', so the path must parse
    cleanly; otherwise a key written that way shows up verbatim and only internal
    markers (pydantic's ``[key]``, a leading ``[i]``) are garbage.
    """
    assert str(error).strip()
    assert error.problems
    for path, message in error.problems:
        assert message.strip(), error.problems
        assert path, f"a problem without its path: {message}"
        assert "[key]" not in path and not path.startswith("["), f"garbled path {path!r}: {message}"
        if plain_keys:
            bare = _INDEX.sub("", path)
            assert "[" not in bare and "]" not in bare, f"garbled path {path!r}: {message}"
            assert all(bare.split(".")), f"empty segment in path {path!r}"


def _plain_keys(node: Any) -> bool:
    if isinstance(node, dict):
        return all(not (isinstance(k, str) and set(k) & set(".[]")) and _plain_keys(v) for k, v in node.items())
    if isinstance(node, list):
        return all(_plain_keys(v) for v in node)
    return True


def check_spec(raw: dict[str, Any]) -> str:
    """validate_spec accepts and round-trips ``raw``, or rejects it with a well-formed SpecError."""
    try:
        spec = validate_spec(raw)
    except SpecError as error:
        note(str(error))
        assert_well_formed(error)
        return "rejected"
    data = spec.to_dict()
    text = yaml.safe_dump(data, sort_keys=False)
    again = validate_spec(yaml.safe_load(text))
    assert again.to_dict() == data, text
    assert again.space.parameter_names == spec.space.parameter_names
    return "accepted"


def test_the_base_spec_is_valid():
    check_spec(copy.deepcopy(TINY_SPEC))


@FUZZ
@given(mutated_specs())
def test_a_mutated_spec_is_accepted_and_round_trips_or_rejected_at_a_path(raw):
    note(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    event(check_spec(raw))


# ---------------------------------------------------------------- overrides
def _paths(node: Any, prefix: str = "") -> list[str]:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    found = []
    for key, child in items:
        path = f"{prefix}[{key}]" if isinstance(key, int) else f"{prefix}.{key}" if prefix else key
        found += [path, *_paths(child, path)]
    return found


EXISTING_PATHS = [p for p in _paths(TINY_SPEC) if not p.startswith("model.name")]
segments = st.one_of(st.sampled_from(KEYS).map(lambda k: f".{k}"), st.integers(0, 4).map(lambda i: f"[{i}]"))
override_keys = st.one_of(
    st.sampled_from(EXISTING_PATHS),
    st.builds(lambda p, s: p + "".join(s), st.sampled_from(EXISTING_PATHS), st.lists(segments, min_size=1, max_size=2)),
    st.builds(lambda k, s: k + "".join(s), st.sampled_from(KEYS), st.lists(segments, max_size=3)),
    st.text(max_size=12),
).filter(lambda key: not key.strip().startswith("model.name"))


def _yaml_text(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10 ** 9, allow_unicode=True)
    return text.removesuffix("\n...\n").strip()


YAML_SNIPPETS = ["", "[1, 2", "{a: ", "&a [*a]", "*undefined", "!!binary aGk=", "2001-12-14", "!!set {a, b}",
                 "!!python/object/apply:os.system ['true']", "off", "on", "~", "'1e-3'", "1e-3", "{choice: []}",
                 "{uniform: [2, 1]}", "{int: [0, 4]}", "- a\n- b", "a: b: c", "\t3"]
override_values = st.one_of(distributions().map(_yaml_text), values.map(_yaml_text), st.sampled_from(YAML_SNIPPETS),
                            st.text(max_size=10))


def _leaf(path: str) -> Any:
    node: Any = TINY_SPEC
    for m in _PART.finditer(path):
        node = node[m.group(1) if m.group(1) is not None else int(m.group(2))]
    return node


def _like(value: Any) -> st.SearchStrategy[Any]:
    """Values of the same YAML type as ``value``: a plausible edit."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(-2, 20)
    if isinstance(value, float):
        return st.one_of(st.floats(0, 1), st.floats(1e-6, 10))
    if isinstance(value, str):
        return st.sampled_from(NAMES)
    return values


LEAF_PATHS = [p for p in EXISTING_PATHS if not isinstance(_leaf(p), (dict, list))]
plausible_items = st.one_of(
    st.sampled_from(LEAF_PATHS).flatmap(lambda p: _like(_leaf(p)).map(lambda v: f"{p}={_yaml_text(v)}")),
    st.sampled_from(sorted(set(KNOBS) - {"optimizer", "batch_size", "hflip", "scale"})).flatmap(
        lambda k: valid_knob_values(k).map(lambda v: f"search.{k}={_yaml_text(v)}")),
)
override_items = st.one_of(plausible_items, plausible_items,
                           st.builds(lambda k, v: f"{k}={v}", override_keys, override_values), st.text(max_size=12))


@FUZZ
@given(st.lists(override_items, min_size=1, max_size=3))
def test_random_overrides_apply_or_are_rejected_naming_the_key(items):
    raw = copy.deepcopy(TINY_SPEC)
    for item in items:
        try:
            apply_override(raw, item)
        except SpecError as error:
            message = str(error)
            key = item.partition("=")[0].strip()
            assert message.strip()
            assert "--set" in message and any(text in message for text in (key, repr(key), repr(item))), message
            event("override rejected")
            return
    note(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    event(check_spec(raw))


# ------------------------------------------------------------ the YAML text
BASE_TEXT = yaml.safe_dump(TINY_SPEC, sort_keys=False)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@st.composite
def edited_texts(draw: Any) -> str:
    lines = BASE_TEXT.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["replace_value", "insert_line", "delete_line", "indent", "insert_chars"]))
        if op == "replace_value" and ":" in lines[i]:
            head = lines[i].partition(":")[0]
            lines[i] = f"{head}: {draw(st.one_of(override_values, st.sampled_from(NAMES)))}"
        elif op == "insert_line":
            lines.insert(i, " " * draw(st.integers(0, 6)) + f"{draw(keys)}: {draw(override_values)}")
        elif op == "delete_line" and len(lines) > 1:
            del lines[i]
        elif op == "indent":
            lines[i] = " " * draw(st.integers(0, 3)) + lines[i]
        else:
            at = draw(st.integers(0, len(lines[i])))
            junk = draw(st.text(st.sampled_from("{}[]:,-#&*!|>'\"% \t?x1"), max_size=3))
            lines[i] = lines[i][:at] + junk + lines[i][at:]
    return "\n".join(lines) + "\n"


@FUZZ
@given(edited_texts())
def test_an_edited_yaml_file_loads_or_is_rejected_cleanly(scratch, text):
    note(text)
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        parsed = None
    if isinstance(parsed, dict):
        parsed.setdefault("name", "fuzz")
    path = scratch / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        spec = load_spec(path)
    except SpecError as error:
        note(str(error))
        assert str(error).strip()
        event("rejected")
        for problem_path, message in error.problems:
            assert message.strip(), error.problems
            if problem_path:  # whole-file problems (invalid YAML, not a mapping) have none
                assert_well_formed(SpecError([(problem_path, message)]), plain_keys=_plain_keys(parsed))
        return
    again = validate_spec(yaml.safe_load(yaml.safe_dump(spec.to_dict(), sort_keys=False)))
    assert again.to_dict() == spec.to_dict()
    event("accepted")

