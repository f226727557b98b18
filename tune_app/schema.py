"""What a hyperparameter may be: the small schema every registry entry declares.

A :class:`Param` says the type and the valid range of one keyword argument of a
loss, scheduler or optimizer, or of one top-level knob (``lr``, ``amp``, ...). The
spec layer checks every fixed value and both ends of every searched range against
it, so a bad YAML value is rejected before any trial starts, with the reason.

Registry entries' options are checked by one function, :func:`check_options`, and
unknown names get one wording, :func:`unknown_name` (with a "did you mean").

Example:
    >>> Param(float, low=0.0, high=1.0).check(0.25)
    0.25
    >>> Param(float, low=0.0, low_open=True).check(0.0)
    Traceback (most recent call last):
    ...
    ValueError: must be > 0.0, got 0.0
    >>> check_options("loss 'focal'", {"gamma": Param(float, low=0)}, {"gama": 2})
    Traceback (most recent call last):
    ...
    tune_app.schema.OptionError: loss 'focal' has no parameter 'gama' (did you mean 'gamma'?); its parameters: gamma
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


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
    item: Param | None = None
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
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise ValueError(f"must be {'>' if self.low_open else '>='} {self.low}, got {value!r}")
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
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


# ------------------------------------------------------------ checking options
class ParamSchema(Protocol):
    """What a value parameter offers: :class:`Param`, or a duck-typed equal (``freeze_depth``'s)."""

    kind: type

    def check(self, value: Any) -> Any: ...

    def describe(self) -> str: ...


class OptionInfo(Protocol):
    """A registry entry (a loss, an LR schedule, an optimizer, a strategy): the parameters it accepts."""

    params: Mapping[str, ParamSchema]


def close_matches(word: Any, known: Iterable[Any], n: int = 1, cutoff: float = 0.5) -> list[str]:
    """The entries of ``known`` closest to ``word`` (as text), best first."""
    return difflib.get_close_matches(str(word), [str(k) for k in known], n=n, cutoff=cutoff)


def did_you_mean(word: Any, known: Iterable[Any]) -> str:
    """`` (did you mean 'gamma'?)`` for the closest entry of ``known``, or an empty string."""
    close = close_matches(word, known)
    return f" (did you mean {close[0]!r}?)" if close else ""


def did_you_mean_any(word: Any, known: Iterable[Any], prefix: str = "") -> str:
    """``; did you mean timm/resnet18, timm/resnet101?``: up to five close entries, for long lists such as
    a library's models (``prefix`` goes before each); an empty string when none is close.

    Example:
        >>> did_you_mean_any("resnt18", ["resnet18", "resnet34", "vit_base"], prefix="timm/")
        '; did you mean timm/resnet18, timm/resnet34?'
    """
    close = close_matches(word, known, n=5, cutoff=0.6)
    return f"; did you mean {', '.join(prefix + c for c in close)}?" if close else ""


def unknown_name(word: Any, known: Iterable[Any], what: str = "name") -> str:
    """The one wording of an unknown name: ``unknown name 'x' (did you mean 'y'?); valid: a, b``.

    Example:
        >>> unknown_name("adamm", ["sgd", "adam", "adamw"])
        "unknown name 'adamm' (did you mean 'adam'?); valid: sgd, adam, adamw"
    """
    known = [str(k) for k in known]
    return f"unknown {what} {word!r}{did_you_mean(word, known)}; valid: {', '.join(known)}"


def unknown_option(owner: str, key: Any, known: Iterable[Any], what: str = "parameter") -> str:
    """``<owner> has no parameter 'k' (did you mean ...?); its parameters: a, b`` (or ``none``)."""
    known = [str(k) for k in known]
    return f"{owner} has no {what} {key!r}{did_you_mean(key, known)}; its {what}s: {', '.join(known) or 'none'}"


class OptionError(ValueError):
    """An option that :func:`check_options` rejected.

    Attributes:
        key: The option's name.
        unknown: Whether the owner has no such option (else its value is invalid).
        reason: The message without the owner and key, for callers that name the key in a path.
    """

    def __init__(self, message: str, key: str, unknown: bool, reason: str) -> None:
        super().__init__(message)
        self.key, self.unknown, self.reason = key, unknown, reason


def check_options(owner: str, schema: Mapping[str, ParamSchema], values: Mapping[str, Any],
                  what: str = "parameter") -> dict[str, Any]:
    """Each of ``values`` checked against its entry of ``schema``, in canonical form.

    Args:
        owner: Who takes the options, for messages: ``loss 'focal'``, ``'asha'``.
        schema: Option name -> :class:`Param` (or anything with ``check``).
        values: The given options.
        what: What an option is called in messages (``parameter``, ``option``).

    Raises:
        OptionError: For the first unknown option or invalid value.
    """
    checked = {}
    for key, value in values.items():
        if key not in schema:
            message = unknown_option(owner, key, schema, what)
            raise OptionError(message, key, True, message)
        try:
            checked[key] = schema[key].check(value)
        except ValueError as exc:
            raise OptionError(f"{owner}: {key} {exc}", key, False, str(exc)) from None
    return checked


def named_options(config: str | Mapping[str, Any], registry: Mapping[str, OptionInfo], what: str) -> dict[str, Any]:
    """``"adamw"`` or ``{"name": "adamw", **params}`` -> the checked ``{"name": ..., **params}`` of ``registry``.

    Raises:
        ValueError: An unknown name (``what`` says of what), or an unknown or out-of-range parameter.
    """
    params = {"name": config} if isinstance(config, str) else dict(config)
    name = params.pop("name", None)
    info = registry.get(name)  # type: ignore[arg-type]
    if info is None:
        raise ValueError(unknown_name(name, registry, what))
    return {"name": name, **check_options(f"{what} {name!r}", info.params, params)}
