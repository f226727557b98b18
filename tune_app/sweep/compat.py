"""The versions of Ray and Optuna tune-app's sweeps were tested with.

A sweep relies on a few internals of Ray and Optuna (private names, Ray's own state
files), verified on Ray 2.60 and Optuna 5.1. :func:`check_versions`, called when a sweep
starts (``runner.run_sweep`` and ``runner.resume_sweep``), stops a sweep on versions
outside :data:`TESTED` unless ``TUNE_APP_ALLOW_UNTESTED=1``; the bounds in ``pyproject.toml``
are the same. It reads the installed versions without importing Ray or Optuna (validating
a spec must not load Ray).

Example:
    >>> is_tested("ray", "2.60.1"), is_tested("ray", "2.61.0"), is_tested("optuna", "5.1.0")
    (True, False, True)
    >>> requirement("optuna")
    'optuna>=4.0,<6'
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
from typing import Mapping

from ..errors import UntestedVersionError

# ------------------------------------------------------------------ versions
# Per package: (lowest tested, first untested) release. Ray 2.60.x only: each use of its
# internals below was verified on 2.60, and Ray changes them between minor releases.
TESTED: dict[str, tuple[str, str]] = {"ray": ("2.60", "2.61"), "optuna": ("4.0", "6")}
PIP_NAME = {"ray": "ray[tune]", "optuna": "optuna"}  # what to pip install
ALLOW_UNTESTED = "TUNE_APP_ALLOW_UNTESTED"  # =1: run on untested versions anyway


def release(version: str) -> tuple[int, ...]:
    """The release numbers a version starts with; pre-, post-, dev- and local parts are left out.

    Example:
        >>> release("2.60.0"), release("2.61.0rc1"), release("6.0.0.dev0"), release("2.4.1+cu121")
        ((2, 60, 0), (2, 61, 0), (6, 0, 0), (2, 4, 1))
    """
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    if match is None:
        raise ValueError(f"not a version: {version!r}")
    return tuple(int(part) for part in match.group().split("."))


def _before(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    width = max(len(a), len(b))  # 4 is 4.0
    return a + (0,) * (width - len(a)) < b + (0,) * (width - len(b))


def is_tested(package: str, version: str | None) -> bool:
    """Whether ``version`` of ``package`` (None: not installed) is in its tested range."""
    if version is None:
        return False
    low, high = TESTED[package]
    installed = release(version)
    return not _before(installed, release(low)) and _before(installed, release(high))


def requirement(package: str) -> str:
    """``package`` and its tested range as a requirement, e.g. ``ray>=2.60,<2.61``."""
    low, high = TESTED[package]
    return f"{package}>={low},<{high}"


def installed_versions() -> dict[str, str | None]:
    """The installed version of each package of :data:`TESTED` (None: not installed), read without importing it."""
    found: dict[str, str | None] = {}
    for package in TESTED:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def untested_message(installed: Mapping[str, str | None]) -> str | None:
    """What to tell the user when a version in ``installed`` is untested; None when all are tested."""
    untested = [package for package in TESTED if not is_tested(package, installed.get(package))]
    if not untested:
        return None
    found = ", ".join(f"{package} {installed.get(package) or 'not installed'}{' (untested)' * (package in untested)}"
                      for package in TESTED)
    install = " ".join(f"'{PIP_NAME[p]}>={TESTED[p][0]},<{TESTED[p][1]}'" for p in untested)
    return (f"tune-app's sweeps rely on internals of Ray and Optuna that were tested with "
            f"{' and '.join(requirement(p) for p in TESTED)} (see tune_app/sweep/compat.py); installed: {found}. "
            f"Install a tested version (pip install {install}), or set {ALLOW_UNTESTED}=1 to run anyway, "
            f"at your own risk.")


def check_versions(installed: Mapping[str, str | None] | None = None,
                   environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`~tune_app.errors.UntestedVersionError` unless Ray and Optuna are in their tested ranges.

    Args:
        installed: Package -> version; default: what is installed.
        environ: Where ``TUNE_APP_ALLOW_UNTESTED`` is looked up; default: ``os.environ``. When it
            is ``1`` (or ``true``, ``yes``), untested versions are only warned of.
    """
    message = untested_message(installed_versions() if installed is None else installed)
    if message is None:
        return
    if (os.environ if environ is None else environ).get(ALLOW_UNTESTED, "").strip().lower() in ("1", "true", "yes"):
        logging.getLogger(__name__).warning("%s is set: running on untested versions. %s", ALLOW_UNTESTED, message)
        return
    raise UntestedVersionError(message)
