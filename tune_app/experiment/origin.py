"""What an experiment grew from: ``origin.json`` records warm starts and extensions (the reports read it).

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = add_origin(folder, "extended", {"trials": 4})
    >>> read_origin(folder)
    {'extended': [{'trials': 4}]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..report.results import ORIGIN_FILE, read_origin

__all__ = ["ORIGIN_FILE", "add_origin", "read_origin"]


def add_origin(experiment_dir: str | Path, key: str, entry: dict[str, Any]) -> Path:
    """Append ``entry`` under ``key`` (``warm_start`` or ``extended``); returns the file's path."""
    data = read_origin(experiment_dir)
    data.setdefault(key, []).append(entry)
    path = Path(experiment_dir) / ORIGIN_FILE
    path.write_text(json.dumps(data, indent=2))
    return path
