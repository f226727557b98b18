"""What each searched parameter is: from ``parameters.json``, or inferred from the results.

tune-app writes ``parameters.json`` next to ``spec.yaml`` (one entry per dotted name, e.g.
``{"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": true, "condition": {}}}``).
It is optional here: an experiment directory without it (an older run, or one copied
by hand) gets each parameter's kind inferred from the values its trials took.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"lr": [0.1, 0.001, 0.01], "loss": ["ce", "focal", "ce"]})
    >>> [(p.name, p.kind) for p in infer_parameters(frame, ["lr", "loss"])]
    [('lr', 'float'), ('loss', 'categorical')]
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

# An int range this small, or a numeric column with this few repeated values, gets a per-value table.
MAX_LEVELS = 8
# Inferred as log scale when all values are positive and span at least two decades.
LOG_SPAN = 100.0


@dataclass(frozen=True)
class Parameter:
    """One searched parameter.

    Attributes:
        name: dotted name, as in ``results.csv`` (``loss.gamma``).
        kind: ``categorical``, ``float`` or ``int``.
        low, high, log: the searched range (floats and ints).
        choices: the searched values (categoricals).
        condition: the choices that make it exist, e.g. ``{"loss": "focal"}``.
        inferred: True when read off the results instead of ``parameters.json``.
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    condition: Mapping[str, Any] = field(default_factory=dict)
    inferred: bool = False

    @property
    def numeric(self) -> bool:
        """Ordered numbers (a range, or a choice among numbers): a rank correlation makes sense."""
        if self.kind != "categorical":
            return True
        return bool(self.choices) and all(_is_number(c) for c in self.choices)

    @property
    def discrete(self) -> bool:
        """Few enough values for a per-value comparison table (loss, amp, freeze_depth, ...)."""
        if self.kind == "categorical":
            return True
        if self.kind == "int" and self.low is not None and self.high is not None:
            return self.high - self.low + 1 <= MAX_LEVELS
        return False


def read_parameters(experiment_dir: str | Path, results: pd.DataFrame, names: Sequence[str]) -> list[Parameter]:
    """The parameters ``names`` (results columns, in that order), described by ``parameters.json`` if any.

    A parameter that ``parameters.json`` does not describe, or a directory without the file,
    falls back to :func:`infer_parameters`.
    """
    path = Path(experiment_dir) / "parameters.json"
    declared: dict[str, Any] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            declared = data if isinstance(data, dict) else {}
        except json.JSONDecodeError:
            declared = {}  # a half-written file: infer rather than fail the report
    params = []
    for name in names:
        info = declared.get(name)
        parsed = _from_json(name, info) if isinstance(info, dict) else None
        params.append(parsed or infer_parameters(results, [name])[0])
    return params


def _from_json(name: str, info: dict[str, Any]) -> Parameter | None:
    kind = info.get("type")
    condition = dict(info.get("condition") or {})
    if kind == "categorical":
        return Parameter(name, "categorical", choices=tuple(info.get("choices") or ()), condition=condition)
    if kind in ("float", "int") and _is_number(info.get("low")) and _is_number(info.get("high")):
        return Parameter(name, kind, low=info["low"], high=info["high"], log=bool(info.get("log")),
                         condition=condition)
    return None


def infer_parameters(results: pd.DataFrame, names: Sequence[str]) -> list[Parameter]:
    """Each parameter's kind from its values: text or booleans are categorical; numbers are ranges.

    A numeric column with few distinct values that repeat (a choice among numbers, or a
    small int range) is categorical, so it gets a per-value table.
    """
    params = []
    for name in names:
        present = [v for v in results[name].tolist() if not _missing(v)] if name in results else []
        distinct = list(dict.fromkeys(present))
        if not present or not all(_is_number(v) for v in present):
            params.append(Parameter(name, "categorical", choices=tuple(distinct), inferred=True))
        elif len(distinct) <= MAX_LEVELS and len(distinct) < len(present):
            params.append(Parameter(name, "categorical", choices=tuple(sorted(distinct)), inferred=True))
        else:
            low, high = float(min(present)), float(max(present))
            kind = "int" if all(float(v).is_integer() for v in present) else "float"
            log = low > 0 and high / low >= LOG_SPAN
            params.append(Parameter(name, kind, low=low, high=high, log=log, inferred=True))
    return params


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA
