"""Where tune-app keeps what it caches on this machine (decoded images, remote experiments' mirrors,
model facts). Dependency-free: every layer may ask."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """``TUNE_APP_CACHE``, else ~/.cache/tune-app."""
    return Path(os.environ.get("TUNE_APP_CACHE") or Path.home() / ".cache" / "tune-app")
