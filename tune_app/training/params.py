"""What a hyperparameter may be: the small schema every registry entry declares.

A :class:`Param` says the type and the valid range of one keyword argument of a
loss, scheduler or optimizer, or of one top-level knob (``lr``, ``amp``, ...). The
spec layer checks every fixed value and both ends of every searched range against
it, so a bad YAML value is rejected before any trial starts, with the reason.

Example:
    >>> Param(float, low=0.0, high=1.0).check(0.25)
    0.25
    >>> Param(float, low=0.0, low_open=True).check(0.0)
    Traceback (most recent call last):
    ...
    ValueError: must be > 0.0, got 0.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Param:
    """Type and valid range of one hyperparameter.

    Args:
        kind: ``float``, ``int``, ``str`` or ``bool``. A float parameter accepts ints.
        low: Smallest valid value (numbers only).
        high: Largest valid value (numbers only).
        low_open: Whether ``low`` itself is invalid (``> low`` instead of ``>= low``).
        high_open: Whether ``high`` itself is invalid.
        choices: The valid values, for a parameter with a fixed set of them.
        coerce: Maps YAML spellings to the canonical value before checking
            (``amp: off`` is YAML's ``False``).
        item: For ``kind=list``: the schema of every item (``milestones: [2, 4]``).
        min_items: For ``kind=list``: the fewest items allowed.
        help: One line for ``tune-app list``.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    coerce: Callable[[Any], Any] | None = None
    item: "Param | None" = None
    min_items: int = 1
    help: str = ""

    @property
    def numeric(self) -> bool:
        return self.kind in (int, float)

    def check(self, value: Any) -> Any:
        """Return ``value`` in canonical form, or raise ``ValueError`` saying why not."""
        if self.coerce is not None:
            value = self.coerce(value)
        value = self._check_type(value)
        if self.kind is list:
            return value
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"must be one of {list(self.choices)}, got {value!r}")
        if self.low is not None:
            if value < self.low or (self.low_open and value == self.low):
                raise ValueError(f"must be {'>' if self.low_open else '>='} {self.low}, got {value!r}")
        if self.high is not None:
            if value > self.high or (self.high_open and value == self.high):
                raise ValueError(f"must be {'<' if self.high_open else '<='} {self.high}, got {value!r}")
        return value

    def _check_type(self, value: Any) -> Any:
        if self.kind is list:
            if not isinstance(value, list) or len(value) < self.min_items:
                raise ValueError(f"must be {self.describe()}, got {value!r}")
            item = self.item or Param(float)
            checked = []
            for i, element in enumerate(value):
                try:
                    checked.append(item.check(element))
                except ValueError as exc:
                    raise ValueError(f"item {i}: {exc}") from None
            return checked
        # bool is an int subclass in Python; `lr: true` is a mistake, not 1.0.
        if self.kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ValueError(f"must be a finite number, got {value!r}")
            return float(value)
        if self.kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if self.kind in (str, bool) and isinstance(value, self.kind):
            return value
        raise ValueError(f"must be {_KIND_NAMES[self.kind]}, got {type(value).__name__} {value!r}")

    def describe(self) -> str:
        """Short human text of the valid values, e.g. ``float in (0, 1]``."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.kind is list:
            item = (self.item or Param(float)).describe()
            return f"a list of at least {self.min_items} item{'s' * (self.min_items != 1)}, each {item}"
        text = _KIND_NAMES[self.kind]
        if self.low is not None or self.high is not None:
            left = ("(" if self.low_open else "[") + ("-inf" if self.low is None else f"{self.low:g}")
            right = "inf)" if self.high is None else f"{self.high:g}" + (")" if self.high_open else "]")
            text += f" in {left}, {right}"
        return text


_KIND_NAMES = {float: "a number", int: "an integer", str: "a string", bool: "true or false", list: "a list"}


def positive(kind: type = float, help: str = "") -> Param:
    """A number that must be > 0."""
    return Param(kind, low=0, low_open=True, help=help)


def non_negative(kind: type = float, help: str = "") -> Param:
    """A number that must be >= 0."""
    return Param(kind, low=0, help=help)


def fraction(low_open: bool = False, high_open: bool = False, help: str = "") -> Param:
    """A float in [0, 1], either end optionally open."""
    return Param(float, low=0.0, high=1.0, low_open=low_open, high_open=high_open, help=help)


def one_of(*choices: str, coerce: Callable[[Any], Any] | None = None, help: str = "") -> Param:
    """A string from a fixed set."""
    return Param(str, choices=tuple(choices), coerce=coerce, help=help)
