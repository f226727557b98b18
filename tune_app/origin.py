"""What an experiment grew from: ``origin.json`` records warm starts and extensions, for the reports.

Written by the commands that start or extend a sweep, read by the report layer. No
dependencies.

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

ORIGIN_FILE = "origin.json"


def read_origin(experiment_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """``{"warm_start": [...], "extended": [...]}`` as far as recorded; empty when nothing is."""
    path = Path(experiment_dir) / ORIGIN_FILE
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def add_origin(experiment_dir: str | Path, key: str, entry: dict[str, Any]) -> Path:
    """Append ``entry`` under ``key`` (``warm_start`` or ``extended``); returns the file's path."""
    data = read_origin(experiment_dir)
    data.setdefault(key, []).append(entry)
    path = Path(experiment_dir) / ORIGIN_FILE
    path.write_text(json.dumps(data, indent=2))
    return path
