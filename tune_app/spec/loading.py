"""Spec file -> validated :class:`~.sections.ExperimentSpec`: read, override, check everything at once."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import SpecError
from ..schema import did_you_mean
from ..training import KNOBS
from .checks import SEARCH_CHECKS, SECTION_CHECKS
from .overrides import apply_override, dotted, set_path, split_path
from .sections import ExperimentSpec, Problem
from .space import SpaceError, parse_space
from .yamlfile import load_yaml

MAX_SPEC_BYTES = 1_000_000
# Where a bare name (`tune-app search resnet`) is looked for: here, then the project's own folder.
SEARCH_SPACE_DIRS = (Path("search_spaces"), Path(__file__).resolve().parents[2] / "search_spaces")


def load_spec(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    name: str | None = None,
    storage: str | None = None,
    address: str | None = None,
    dashboard: bool | str | None = None,
) -> ExperimentSpec:
    """Read, override and validate a spec file; raise :class:`SpecError` on any problem.

    ``path`` may also be a bundled search space's bare name (``resnet``).
    """
    path = find_spec_file(path)
    source = str(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(f"the file must hold a mapping of sections (name, data, model, train, search, tune), "
                        f"got {type(raw).__name__}", source)
    raw.setdefault("name", path.stem)
    for item in overrides:
        apply_override(raw, item)
    for key, value in (("name", name), ("tune.storage", storage), ("tune.address", address),
                       ("tune.dashboard", dashboard)):
        if value is not None:
            set_path(raw, split_path(key), value, key)
    return validate_spec(raw, source)


def bundled_search_spaces() -> dict[str, Path]:
    """The ready-to-run spec files by bare name, the first folder of ``SEARCH_SPACE_DIRS`` winning."""
    found: dict[str, Path] = {}
    for folder in SEARCH_SPACE_DIRS:
        for file in sorted(folder.glob("*.yaml")) if folder.is_dir() else ():
            found.setdefault(file.stem, file)
    return found


def find_spec_file(path: str | Path) -> Path:
    """``path`` itself when it is a file, else the bundled search space of that bare name.

    Raises:
        SpecError: Neither exists; the message lists the bundled search spaces.
    """
    given = Path(path)
    if given.is_file():
        return given
    bundled = bundled_search_spaces()
    if not given.suffix and len(given.parts) == 1 and given.name in bundled:
        return bundled[given.name]
    hint = ""
    if bundled:
        names = list(bundled)
        hint = (f"{did_you_mean(given.stem, names)}; the bundled search spaces: {', '.join(names)} "
                f"(run one by name, e.g. tune-app search {names[0]})")
    raise SpecError(f"no such file: {path}{hint}")


def read_yaml(path: str | Path) -> Any:
    """Load one YAML document with the safe loader; errors name the line and column."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"no such file: {path}")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise SpecError(f"the file is {path.stat().st_size} bytes; a spec may be at most {MAX_SPEC_BYTES}", str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"invalid YAML: the file is not UTF-8 text ({exc})", str(path)) from None
    data = load_yaml(text, str(path))
    if data is None:
        raise SpecError("the file is empty (or only comments); a spec needs at least a model and a search section",
                        str(path))
    return data


def validate_spec(raw: dict[str, Any], source: str | None = None) -> ExperimentSpec:
    """Validate already-loaded spec data (e.g. a round trip of ``to_dict``); every problem at once."""
    keys = _non_text_keys(raw)
    if keys:
        raise SpecError(keys, source)
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        problems = dict(_pydantic_problem(err) for err in reversed(exc.errors()))  # one per path, the first
        raise SpecError(list(reversed(problems.items())), source) from None
    problems = spec.problems()
    if any(path == "task" for path, _ in problems):  # everything else depends on the task
        raise SpecError(problems, source)
    for check in SECTION_CHECKS:
        problems += check(spec)
    if not problems:
        spec = spec.model_copy(update={"tune": spec.tune.canonical()})
    try:
        spec._space = parse_space(spec.search, KNOBS)
    except SpaceError as exc:
        problems.append((exc.path, exc.message))
    else:
        for check in SEARCH_CHECKS:
            problems += check(spec)
    if problems:
        raise SpecError(problems, source)
    return spec


# ---------------------------------------------------------------- pydantic's errors
# Pydantic names the member of a union that failed (`gpu.float`); users need the field.
_UNION_MEMBER = re.compile(r"^(int|float|str|bool|none|(literal|list|dict|tuple|function-\w+)\[.*\])$")


def _pydantic_problem(err: Mapping[str, Any]) -> Problem:
    loc = tuple(err["loc"])
    # An unknown key is the last part of its path, whatever it is called (`int` is a key there, not a union member).
    unknown, loc = (loc[-1:], loc[:-1]) if err["type"] == "extra_forbidden" and loc else ((), loc)
    while loc and isinstance(loc[-1], str) and _UNION_MEMBER.match(loc[-1]):
        loc = loc[:-1]
    loc += unknown
    path = dotted(loc)
    if err["type"] == "extra_forbidden":
        fields = _fields_at(loc[:-1])
        return path, f"unknown key{did_you_mean(loc[-1], fields)}; valid keys here: {', '.join(fields)}"
    if err["type"] == "value_error":  # our own validators: the message says it all
        return path, str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return path, f"{err['msg']}, got {shown}"


def _non_text_keys(value: Any, path: str = "") -> list[Problem]:
    """Keys YAML read as something other than text (``on:`` is YAML 1.1's true)."""
    problems = []
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, str):
                problems.append((f"{path}.{key}" if path else str(key),
                                 f"keys must be text, got {type(key).__name__} {key!r}; YAML reads on/off/yes/no as "
                                 f"true/false and digits as numbers: quote the key"))
            else:
                problems += _non_text_keys(child, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            problems += _non_text_keys(child, f"{path}[{i}]")
    return problems


def _fields_at(loc: Sequence[Any]) -> list[str]:
    model: Any = ExperimentSpec
    for part in loc:
        field = _by_key(model).get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(_by_key(model))


def _by_key(model: Any) -> dict[str, Any]:
    """A section's fields by their YAML key (``tune.scheduler`` is the field ``trial_scheduler``)."""
    return {field.alias or name: field for name, field in model.model_fields.items()}
