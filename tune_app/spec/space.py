"""The ``search:`` section as one tree of parameters, and what search algorithms need of it.

A node is a fixed value, a distribution (``choice``, ``uniform``, ``loguniform``,
``int``) or a *conditional* choice: a family such as ``loss`` whose options carry
their own parameters, which exist only in trials that picked that option.

Every searched parameter has a dotted name (``lr``, ``loss``, ``loss.gamma``): the
keys of a trial's flat config and the columns of ``results.csv``. Where two options
of one choice both search a parameter of the same name, the option label goes in
between (``scheduler.step.gamma``, ``scheduler.exponential.gamma``) so a column never
mixes two meanings.

The same tree compiles to an Optuna define-by-run function (TPE and random search
both see the conditional structure), expands to a full grid, gives every parameter's
default, and turns a flat trial config back into the nested dict the training
function takes.

Example:
    >>> from tune_app.training import KNOBS
    >>> space = parse_space({"lr": {"loguniform": [1e-4, 1e-1]},
    ...                      "loss": {"choice": ["ce", {"name": "focal", "gamma": {"choice": [1.0, 2.0]}}]}},
    ...                     KNOBS)
    >>> space.parameter_names
    ['lr', 'loss', 'loss.gamma']
    >>> space.nest({"lr": 0.01, "loss": "focal", "loss.gamma": 2.0})
    {'lr': 0.01, 'loss': {'name': 'focal', 'gamma': 2.0}}
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..schema import OptionInfo, ParamSchema, close_matches, did_you_mean, unknown_name, unknown_option

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "int")
MAX_GRID = 100_000


class SpaceError(ValueError):
    """A bad ``search:`` entry; ``path`` is its dotted location in the YAML file."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


Schema = ParamSchema | Mapping[str, OptionInfo]


# ---------------------------------------------------------------------- nodes
@dataclass(frozen=True)
class Fixed:
    value: Any


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float
    log: bool = False
    default: float | None = None

    def middle(self) -> float:
        return math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    log: bool = False
    default: int | None = None

    def middle(self) -> int:
        return round(math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2)


@dataclass(frozen=True)
class Categorical:
    values: tuple[Any, ...]
    default: Any = None

    @property
    def labels(self) -> list[Any]:
        """What the flat config holds: the value itself, or its JSON text for lists (Optuna needs scalars)."""
        return [_label_of(v) for v in self.values]

    def value_of(self, label: Any) -> Any:
        return self.values[self.labels.index(label)]


def _label_of(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value)


@dataclass(frozen=True)
class Option:
    """One option of a conditional choice: a registry name plus its own parameters."""

    name: str
    label: str
    params: tuple[tuple[str, Node], ...] = ()


@dataclass(frozen=True)
class Conditional:
    """A family with one or more options; searched when it has more than one."""

    options: tuple[Option, ...]
    default: str | None = None  # an option label

    def option(self, label: str) -> Option:
        for option in self.options:
            if option.label == label:
                return option
        raise KeyError(label)


Node = Fixed | Uniform | IntRange | Categorical | Conditional


@dataclass(frozen=True)
class _Entry:
    """A node placed in the tree: its dotted name and the node."""

    name: str
    node: Node
    children: dict[str, tuple[_Entry, ...]] = field(default_factory=dict)  # option label -> entries


# --------------------------------------------------------------------- parsing
def parse_space(raw: Mapping[str, Any] | None, schema: Mapping[str, Schema], path: str = "search") -> SearchSpace:
    """Parse and validate a ``search:`` mapping against ``schema`` (knob name -> Param or registry)."""
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise SpaceError(path, f"must be a mapping of knob names to values or distributions, got {_show(raw)}")
    root = {}
    for key, value in raw.items():
        if key not in schema:
            raise SpaceError(f"{path}.{key}", unknown_name(key, schema, "knob"))
        root[key] = _parse_knob(value, schema[key], f"{path}.{key}")
    return SearchSpace(root)


def _parse_knob(raw: Any, schema: Schema, path: str) -> Node:
    if isinstance(schema, Mapping):
        return _parse_family(raw, schema, path)
    return _parse_value(raw, schema, path)


def _parse_value(raw: Any, param: ParamSchema, path: str) -> Node:
    if isinstance(raw, Mapping):
        kind = _distribution_kind(raw, path)
        args = raw[kind]
        if kind == "choice":
            values = tuple(_check(param, v, f"{path}.choice[{i}]") for i, v in enumerate(_nonempty_list(args, path)))
            if len(set(map(repr, values))) != len(values):
                raise SpaceError(f"{path}.choice", f"has repeated values: {list(values)}")
            default = _check(param, raw["default"], f"{path}.default") if "default" in raw else None
            if "default" in raw and default not in values:
                raise SpaceError(f"{path}.default", f"{default!r} is not one of the choices {list(values)}")
            return Categorical(values, default)
        low, high = _range(args, kind, path)
        if kind == "int" and param.kind is not int and param.kind is not float:
            raise SpaceError(path, f"int ranges need a numeric parameter; this one must be {param.describe()}")
        if kind != "int" and param.kind is int:
            raise SpaceError(path, f"is an integer parameter: write int: [{low}, {high}] instead of {kind}")
        if kind != "int" and param.kind is not float:
            raise SpaceError(path, f"{kind} needs a numeric parameter; this one must be {param.describe()}")
        _check(param, low, f"{path}.{kind}[0]")
        _check(param, high, f"{path}.{kind}[1]")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise SpaceError(f"{path}.log", f"must be true or false, got {_show(log)}")
        if log and low < 1:
            raise SpaceError(f"{path}.int", f"`low >= 1` must hold for log: true, but got (low={low}, high={high})")
        default = raw.get("default")
        if default is not None:
            number = (int,) if kind == "int" else (int, float)
            if not isinstance(default, number) or isinstance(default, bool) or not low <= default <= high:
                what = "an integer" if kind == "int" else "a number"
                raise SpaceError(f"{path}.default", f"must be {what} in [{low}, {high}], got {_show(default)}")
        if kind == "int":
            return IntRange(int(low), int(high), log=log, default=default)
        return Uniform(float(low), float(high), log=kind == "loguniform", default=default)
    if isinstance(raw, list) and param.kind is not list:
        raise SpaceError(path, f"a list is not a value here; to search over these values write choice: {_show(raw)}")
    return Fixed(_check(param, raw, path))


def _parse_family(raw: Any, registry: Mapping[str, OptionInfo], path: str) -> Conditional:
    if isinstance(raw, Mapping) and "choice" in raw:
        extra = set(raw) - {"choice", "default"}
        if extra:
            raise SpaceError(path, f"unexpected keys {sorted(extra)} next to choice (allowed: choice, default)")
        items = _nonempty_list(raw["choice"], path)
        options = [_parse_option(item, registry, f"{path}.choice[{i}]") for i, item in enumerate(items)]
        labelled = _label(options)
        default = raw.get("default")
        if default is not None:
            default = _resolve_default(default, labelled, f"{path}.default")
        return Conditional(tuple(labelled), default)
    return Conditional((_parse_option(raw, registry, path),))


def _parse_option(raw: Any, registry: Mapping[str, OptionInfo], path: str) -> Option:
    if isinstance(raw, str):
        name, params = raw, {}
    elif isinstance(raw, Mapping):
        if "name" not in raw:
            keys = ", ".join(map(str, raw)) or "nothing"
            hint = next((f" (did you mean 'choice'? {k}: is not a key here)" for k in raw
                         if k != "choice" and close_matches(k, ["choice"], cutoff=0.6)), "")
            raise SpaceError(path, f"an option needs a name (one of {', '.join(registry)}); got a mapping with "
                                   f"{keys}{hint}")
        params = dict(raw)
        name = params.pop("name")
        if not isinstance(name, str):
            raise SpaceError(f"{path}.name", f"must be one of {', '.join(registry)}, got {_show(name)}")
    else:
        raise SpaceError(path, f"must be a name (one of {', '.join(registry)}), a mapping with a name, "
                               f"or choice: [...]; got {_show(raw)}")
    if name not in registry:
        raise SpaceError(path, unknown_name(name, registry))
    info = registry[name]
    parsed = []
    for key, value in params.items():
        if key not in info.params:  # values are checked by their Param, as check_options does when building
            raise SpaceError(f"{path}.{key}", unknown_option(repr(name), key, info.params))
        parsed.append((key, _parse_value(value, info.params[key], f"{path}.{key}")))
    return Option(name, name, tuple(parsed))


def _label(options: list[Option]) -> list[Option]:
    """Give each option a unique label: its name, else its name plus its parameters."""
    names = [o.name for o in options]
    labelled = []
    for option in options:
        label = option.name
        if names.count(option.name) > 1 and option.params:
            label = f"{option.name}(" + ", ".join(
                k if not isinstance(v, Fixed) else f"{k}={v.value}" for k, v in option.params) + ")"
        labelled.append(Option(option.name, label, option.params))
    labels = [o.label for o in labelled]
    return [o if labels.count(o.label) == 1 else Option(o.name, f"{o.label}#{i}", o.params)
            for i, o in enumerate(labelled)]


def _resolve_default(default: Any, options: list[Option], path: str) -> str:
    for option in options:
        if option.label == default:
            return option.label
    for option in options:
        if option.name == default:
            return option.label
    raise SpaceError(path, f"{default!r} is not one of the options {[o.label for o in options]}")


def _distribution_kind(raw: Mapping[str, Any], path: str) -> str:
    kinds = [k for k in raw if k in DISTRIBUTIONS]
    allowed = {"default", "log"}
    extra = [k for k in raw if k not in DISTRIBUTIONS and k not in allowed]
    if len(kinds) != 1 or extra:
        bad = extra[0] if extra else None
        hint = did_you_mean(bad, DISTRIBUTIONS) if bad else ""
        raise SpaceError(path, f"expected a value or exactly one of {', '.join(DISTRIBUTIONS)} "
                               f"(plus an optional default), got keys {list(raw)}{hint}")
    if "log" in raw and kinds[0] != "int":
        raise SpaceError(f"{path}.log", "log: applies to int ranges only; use loguniform for floats")
    return kinds[0]


def _range(args: Any, kind: str, path: str) -> tuple[float, float]:
    if not isinstance(args, list) or len(args) != 2:
        raise SpaceError(f"{path}.{kind}", f"must be a list [low, high], got {_show(args)}")
    low, high = args
    number = (int,) if kind == "int" else (int, float)
    for i, value in enumerate(args):
        if not isinstance(value, number) or isinstance(value, bool) or not math.isfinite(value):
            what = "an integer" if kind == "int" else "a finite number"
            raise SpaceError(f"{path}.{kind}[{i}]", f"must be {what}, got {_show(value)}")
    if low > high:
        raise SpaceError(f"{path}.{kind}", f"`low <= high` must hold, but got (low={low}, high={high})")
    if kind == "loguniform" and low <= 0:
        raise SpaceError(f"{path}.{kind}", f"`low > 0` must hold for loguniform, but got (low={low}, high={high})")
    return low, high


def _check(param: ParamSchema, value: Any, path: str) -> Any:
    try:
        return param.check(value)
    except ValueError as exc:
        raise SpaceError(path, str(exc)) from None


def _nonempty_list(value: Any, path: str) -> list:
    if not isinstance(value, list) or not value:
        raise SpaceError(f"{path}.choice", f"must be a non-empty list of options, got {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------- the space
class SearchSpace:
    """A parsed ``search:`` section."""

    def __init__(self, root: Mapping[str, Node]) -> None:
        self.root = dict(root)
        self._entries = tuple(_place(key, node) for key, node in self.root.items())

    # --------------------------------------------------------------- names
    @property
    def parameter_names(self) -> list[str]:
        """Dotted names of every searched parameter, in file order, options' parameters after their choice."""
        return [e.name for e in _walk(self._entries) if _has_key(e.node)]

    @property
    def categorical_names(self) -> list[str]:
        """The searched parameters whose values are categories (choices and families)."""
        return [e.name for e in _walk(self._entries) if _has_key(e.node) and isinstance(e.node, (Categorical, Conditional))]

    def describe(self) -> dict[str, dict[str, Any]]:
        """Each searched parameter's distribution as plain data (written to ``parameters.json``).

        ``condition`` names the choices that make a parameter exist, e.g. ``{"loss": "focal"}``.
        """
        described = {}
        for entry, picks in _walk_with_picks(self._entries, {}):
            node = entry.node
            if not _has_key(node):
                continue
            if isinstance(node, Categorical):
                info: dict[str, Any] = {"type": "categorical", "choices": node.labels}
            elif isinstance(node, Conditional):
                info = {"type": "categorical", "choices": [o.label for o in node.options]}
            else:
                kind = "int" if isinstance(node, IntRange) else "float"
                info = {"type": kind, "low": node.low, "high": node.high, "log": node.log}
            described[entry.name] = {**info, "condition": dict(picks)}
        return described

    def is_searched(self, knob: str) -> bool:
        """Whether knob (a top-level key such as ``loss``) has anything searched inside it."""
        entry = next((e for e in self._entries if e.name == knob), None)
        return entry is not None and any(_is_searched(e.node) for e in _walk((entry,)))

    # -------------------------------------------------------------- search
    def define_by_run(self, trial: Any) -> None:
        """Optuna define-by-run: suggest every parameter the trial's choices make exist."""
        for entry in self._entries:
            _suggest(entry, trial)

    def sample(self, n: int, seed: int | None = 0) -> list[dict[str, Any]]:
        """``n`` flat configs drawn uniformly at random (Optuna's RandomSampler)."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        configs = []
        for _ in range(n):
            trial = study.ask()
            self.define_by_run(trial)
            configs.append(dict(trial.params))
            study.tell(trial, 0.0)
        return configs

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of a finite space, as flat configs; raises SpaceError for continuous ones."""
        size = self.grid_size()
        if size > MAX_GRID:
            raise SpaceError("search", f"the grid has {size} points, more than {MAX_GRID}; narrow it or use random/optuna")
        points = [{}]
        for entry in self._entries:
            points = [{**p, **q} for p in points for q in _expand(entry)]
        return points

    def grid_size(self) -> int:
        """Number of grid points; raises SpaceError naming the first continuous parameter."""
        return math.prod(_count(e) for e in self._entries)

    # -------------------------------------------------------------- values
    def defaults(self, picks: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The flat config of each parameter's default: ``default:``, else the first choice or mid-range.

        ``picks`` overrides the value of chosen categorical parameters (by dotted name).
        """
        flat: dict[str, Any] = {}
        for entry in self._entries:
            _defaults(entry, flat, picks or {})
        return flat

    def variants(self) -> list[dict[str, Any]]:
        """Flat configs that together pick every value of every choice once, the rest at defaults."""
        all_picks = [{}] + [p for entry, above in _walk_with_picks(self._entries, {}) for p in _picks_of(entry, above)]
        configs: dict[str, dict[str, Any]] = {}
        for picks in all_picks:
            flat = self.defaults(picks)
            configs.setdefault(repr(sorted(flat.items(), key=repr)), flat)
        return list(configs.values())

    def flatten(self, nested: Mapping[str, Any], path: str = "point") -> dict[str, Any]:
        """Nested values (as in a ``search:`` section with every value fixed) -> a flat config.

        The inverse of :meth:`nest`; every searched parameter must be given and lie in its
        range. Raises SpaceError naming the first problem.
        """
        if not isinstance(nested, Mapping):
            raise SpaceError(path, f"must be a mapping of knob names to values, got {_show(nested)}")
        unknown = [k for k in nested if k not in self.root]
        if unknown:
            raise SpaceError(f"{path}.{unknown[0]}", unknown_name(unknown[0], list(self.root), "knob"))
        flat: dict[str, Any] = {}
        for entry in self._entries:
            _flatten(entry, nested.get(entry.name, _MISSING), flat, f"{path}.{entry.name}")
        return flat

    def nest(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        """Flat trial config -> the nested dict the training function takes (fixed values filled in)."""
        return {entry.name: _nest(entry, flat) for entry in self._entries}


def _place(name: str, node: Node) -> _Entry:
    if not isinstance(node, Conditional):
        return _Entry(name, node)
    clashing = _clashing_params(node)
    children = {}
    for option in node.options:
        children[option.label] = tuple(
            _place(f"{name}.{option.label}.{key}" if key in clashing else f"{name}.{key}", child)
            for key, child in option.params)
    return _Entry(name, node, children)


def _clashing_params(node: Conditional) -> set[str]:
    """Parameter names searched by more than one option of the same choice."""
    seen: dict[str, int] = {}
    for option in node.options:
        for key, child in option.params:
            if _is_searched(child):
                seen[key] = seen.get(key, 0) + 1
    return {key for key, count in seen.items() if count > 1}


def _walk(entries: tuple[_Entry, ...]) -> Iterator[_Entry]:
    for entry in entries:
        yield entry
        for children in entry.children.values():
            yield from _walk(children)


def _has_key(node: Node) -> bool:
    """Whether the node itself is a key of the flat config (a family with one option is not)."""
    if isinstance(node, Conditional):
        return len(node.options) > 1
    return not isinstance(node, Fixed)


def _is_searched(node: Node) -> bool:
    """Whether anything in or under the node varies between trials."""
    if isinstance(node, Conditional):
        return len(node.options) > 1 or any(_is_searched(c) for o in node.options for _, c in o.params)
    return not isinstance(node, Fixed)


def _suggest(entry: _Entry, trial: Any) -> None:
    node = entry.node
    if isinstance(node, Categorical):
        trial.suggest_categorical(entry.name, node.labels)
    elif isinstance(node, Uniform):
        trial.suggest_float(entry.name, node.low, node.high, log=node.log)
    elif isinstance(node, IntRange):
        trial.suggest_int(entry.name, node.low, node.high, log=node.log)
    elif isinstance(node, Conditional):
        label = node.options[0].label
        if len(node.options) > 1:
            label = trial.suggest_categorical(entry.name, [o.label for o in node.options])
        for child in entry.children[label]:
            _suggest(child, trial)


def _count(entry: _Entry) -> int:
    node = entry.node
    if isinstance(node, Fixed):
        return 1
    if isinstance(node, Categorical):
        return len(node.values)
    if isinstance(node, IntRange):
        return node.high - node.low + 1
    if isinstance(node, Uniform):
        kind = "loguniform" if node.log else "uniform"
        raise SpaceError(f"search.{entry.name}", f"a {kind} range has no grid; list the values with choice: [...] "
                                                 f"to grid-search it, or use search_alg random or optuna")
    return sum(math.prod(_count(c) for c in children) for children in entry.children.values())


def _expand(entry: _Entry) -> list[dict[str, Any]]:
    node = entry.node
    if isinstance(node, Fixed):
        return [{}]
    if isinstance(node, Categorical):
        return [{entry.name: label} for label in node.labels]
    if isinstance(node, IntRange):
        return [{entry.name: v} for v in range(node.low, node.high + 1)]
    if isinstance(node, Conditional):
        points = []
        for option in node.options:
            head = {entry.name: option.label} if len(node.options) > 1 else {}
            parts = [_expand(c) for c in entry.children[option.label]]
            for combo in itertools.product(*parts):
                point = dict(head)
                for part in combo:
                    point.update(part)
                points.append(point)
        return points
    _count(entry)  # raises for continuous ranges
    return []


def _walk_with_picks(entries: tuple[_Entry, ...], picks: dict[str, Any]) -> Iterator[tuple[_Entry, dict[str, Any]]]:
    """Each entry with the choices its ancestors must make for it to exist."""
    for entry in entries:
        yield entry, picks
        for label, children in entry.children.items():
            yield from _walk_with_picks(children, {**picks, entry.name: label})


def _picks_of(entry: _Entry, picks: dict[str, Any]) -> list[dict[str, Any]]:
    node = entry.node
    if isinstance(node, Categorical):
        return [{**picks, entry.name: label} for label in node.labels]
    if isinstance(node, Conditional) and len(node.options) > 1:
        return [{**picks, entry.name: option.label} for option in node.options]
    return []


def _defaults(entry: _Entry, flat: dict[str, Any], picks: Mapping[str, Any]) -> None:
    node = entry.node
    if isinstance(node, Categorical):
        default = node.values[0] if node.default is None else node.default
        flat[entry.name] = picks.get(entry.name, _label_of(default))
    elif isinstance(node, (Uniform, IntRange)):
        flat[entry.name] = node.middle() if node.default is None else node.default
    elif isinstance(node, Conditional):
        label = picks.get(entry.name, node.default or node.options[0].label)
        if len(node.options) > 1:
            flat[entry.name] = label
        for child in entry.children[label]:
            _defaults(child, flat, picks)


_MISSING = object()


def _flatten(entry: _Entry, value: Any, flat: dict[str, Any], path: str) -> None:
    node = entry.node
    if value is _MISSING:
        if isinstance(node, Fixed) or not _is_searched(node):
            return
        raise SpaceError(path, "is searched, so a point must give its value")
    if isinstance(node, Fixed):
        if value != node.value:
            raise SpaceError(path, f"is fixed at {node.value!r} in search:, got {value!r}")
    elif isinstance(node, Categorical):
        labels = node.labels
        if _label_of(value) not in labels and not (value is False and "off" in labels):
            raise SpaceError(path, f"must be one of the choices {list(node.values)}, got {_show(value)}")
        flat[entry.name] = "off" if value is False and "off" in labels else _label_of(value)
    elif isinstance(node, (Uniform, IntRange)):
        number = (int,) if isinstance(node, IntRange) else (int, float)
        if not isinstance(value, number) or isinstance(value, bool) or not node.low <= value <= node.high:
            raise SpaceError(path, f"must be {'an integer' if isinstance(node, IntRange) else 'a number'} "
                                   f"in [{node.low}, {node.high}], got {_show(value)}")
        flat[entry.name] = value if isinstance(node, IntRange) else float(value)
    else:
        given = {"name": value} if isinstance(value, str) else dict(value) if isinstance(value, Mapping) else None
        if not given or "name" not in given:
            raise SpaceError(path, f"must be an option name or a mapping with a name, got {_show(value)}")
        option = _match_option(node, given, path)
        if len(node.options) > 1:
            flat[entry.name] = option.label
        params = dict(option.params)
        extra = [k for k in given if k != "name" and k not in params]
        if extra:
            raise SpaceError(f"{path}.{extra[0]}", f"option {option.label!r} has no parameter {extra[0]!r} in search:")
        for (key, _), child in zip(option.params, entry.children[option.label]):
            _flatten(child, given.get(key, _MISSING), flat, f"{path}.{key}")


def _match_option(node: Conditional, given: Mapping[str, Any], path: str) -> Option:
    """The option a nested value means: by label or name, the given parameters deciding between namesakes."""
    name = given["name"]
    candidates = [o for o in node.options if name in (o.label, o.name)]
    if not candidates:
        raise SpaceError(path, f"{name!r} is not one of the options {[o.label for o in node.options]}")
    keys = set(given) - {"name"}
    # `ce` and `ce(label_smoothing)`: prefer the option whose parameters are the ones given
    exact = [o for o in candidates if {k for k, _ in o.params} == keys]
    labelled = [o for o in candidates if o.label == name]
    return (exact or labelled or candidates)[0]


def _nest(entry: _Entry, flat: Mapping[str, Any]) -> Any:
    node = entry.node
    if isinstance(node, Fixed):
        return node.value
    if isinstance(node, Categorical):
        return node.value_of(flat[entry.name])
    if not isinstance(node, Conditional):
        return flat[entry.name]
    label = flat[entry.name] if len(node.options) > 1 else node.options[0].label
    option = node.option(label)
    nested: dict[str, Any] = {"name": option.name}
    for (key, _), child in zip(option.params, entry.children[label]):
        nested[key] = _nest(child, flat)
    return nested
