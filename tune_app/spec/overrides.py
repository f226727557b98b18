"""``--set dotted.key=value``: change any value of a loaded spec file before validation.

Keys are dotted names with ``[i]`` for list items; values are YAML.

Example:
    >>> raw = {"train": {"epochs": 8}, "search": {"loss": {"choice": ["ce", {"name": "focal"}]}}}
    >>> apply_override(raw, "train.epochs=3")
    >>> apply_override(raw, "search.loss.choice[1].gamma={choice: [2.0]}")
    >>> raw["train"]["epochs"], raw["search"]["loss"]["choice"][1]
    (3, {'name': 'focal', 'gamma': {'choice': [2.0]}})
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..errors import SpecError
from .yamlfile import load_yaml


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``--set dotted.key=value`` (value parsed as YAML) to ``raw`` in place."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(f"--set expects key=value (e.g. train.epochs=3), got {item!r}")
    try:
        value = load_yaml(text) if text.strip() else None
    except SpecError as exc:
        raise SpecError(f"--set {key}: the value {text!r} is not valid YAML ({exc})") from None
    set_path(raw, split_path(key), value, key)


_KEY = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\[\d+\])*")
_PART = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(\d+)\]")


def split_path(key: str) -> list[str | int]:
    if not _KEY.fullmatch(key):
        raise SpecError(f"--set: cannot read the key {key!r}; write dotted names with [i] for list items, "
                        f"e.g. search.loss.choice[1].gamma")
    return [m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _PART.finditer(key)]


def set_path(raw: Any, parts: list[str | int], value: Any, key: str) -> None:
    node = raw
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list) and not isinstance(part, int):
            raise SpecError(f"--set {key}: {dotted(parts[:depth])} is a list: write [i] to pick an item")
        child = node[part] if _has(node, part) else None
        if child is None:
            if isinstance(part, int):
                raise SpecError(f"--set {key}: {dotted(parts[:depth + 1])} does not exist")
            child = node[part] = {}
        if not isinstance(child, (dict, list)):
            raise SpecError(f"--set {key}: {dotted(parts[:depth + 1])} is {child!r}, not a mapping or list")
        node = child
    last = parts[-1]
    if isinstance(node, list) and not isinstance(last, int):
        raise SpecError(f"--set {key}: {dotted(parts[:-1])} is a list: write [i] to pick an item")
    if isinstance(node, list) and last >= len(node):
        raise SpecError(f"--set {key}: {dotted(parts)} does not exist (the list has {len(node)} items)")
    if isinstance(node, dict) and isinstance(last, int):
        raise SpecError(f"--set {key}: {dotted(parts[:-1])} is a mapping, not a list")
    node[last] = value


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return isinstance(part, str) and part in node
    return isinstance(part, int) and part < len(node)


def dotted(parts: Sequence[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(parts))


