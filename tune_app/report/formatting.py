"""How numbers and durations read in every report (Markdown, HTML, terminal).

Example:
    >>> fmt(0.123456), fmt(2.0), fmt(None), duration(5400), duration(9000)
    ('0.1235', '2', '', '90.0 min', '2.5 h')
"""

from __future__ import annotations

import math
import re
from typing import Any


def fmt(value: Any) -> str:
    """Floats with 4 significant digits, blanks for missing, anything else as text."""
    if value is None or value is _NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") == "f":  # numpy scalars
        return fmt(float(value))
    return str(value)


def mean_std(mean: float, std: float) -> str:
    """``0.8123 ± 0.0252``; just the mean when there is no spread to show (one trial)."""
    if isinstance(mean, float) and math.isnan(mean):
        return ""
    return fmt(float(mean)) if isinstance(std, float) and math.isnan(std) else f"{fmt(float(mean))} ± {fmt(float(std))}"


def duration(seconds: float | None) -> str:
    """``42 s``, ``12.5 min``, ``3.2 h``."""
    if seconds is None or math.isnan(seconds):
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def percent(share: float) -> str:
    return "" if share is None or math.isnan(share) else f"{100 * share:.0f}%"


def value_range(low: float, high: float) -> str:
    """``0.001 – 0.01``, or one value when the range is a point."""
    if math.isnan(low):
        return ""
    return f"{low:.3g}" if low == high else f"{low:.3g} – {high:.3g}"


_NUMBER = r"[-+]?(\d[\d.]*(e[-+]?\d+)?|inf|nan)"
_NUMERIC_TEXT = re.compile(rf"{_NUMBER}( ± {_NUMBER})?( \(\d+\))?%?")


def looks_numeric(value: Any) -> bool:
    """Numbers, and cells such as ``0.81 ± 0.02``, ``0.8 (3)`` or ``12%``: right-aligned in tables."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, str) and bool(_NUMERIC_TEXT.fullmatch(value))


try:  # pandas' missing value, without importing pandas for it
    from pandas import NA as _NA
except ImportError:  # pragma: no cover
    _NA = object()
