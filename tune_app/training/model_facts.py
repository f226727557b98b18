"""What tune-app learns of a model by importing its library or building it, kept on disk between commands.

Validating a spec and planning a sweep ask whether ``timm/resnet50`` exists, how many
stages it has, how big its ``state_dict`` is and how its pretrained weights frame an
image. The answers need timm imported (about 3 s here, most of ``tune-app validate
--no-build``) and a model built on the meta device, and they change only with the
libraries. So each answer is kept in ``model-facts.json`` under :func:`~tune_app.caches.cache_home`, for
the versions of tune-app, torch, torchvision, timm and segmentation-models-pytorch it
was found with, and the code of tune-app that finds it: a later command asking the same
of the same libraries reads it instead (other versions, or changed code, start a new file). Answers only: a question that raised (a bad name) is
asked, and explained, every time.

Example:
    >>> calls = []
    >>> @remembered("example")
    ... def square(x):
    ...     calls.append(x)
    ...     return x * x
    >>> square(3), square(3), calls
    (9, 9, [3])
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from ..caches import cache_home

FACTS_FILE = "model-facts.json"
LIBRARIES = ("tune-app", "torch", "torchvision", "timm", "segmentation-models-pytorch")
# The modules whose code finds the facts: an edited one (an editable install) must not read old answers.
FINDERS = ("models.py", "freeze.py", "meta.py", "tv_segmentation.py", "engine.py", "model_facts.py",
           "regularization.py")
F = TypeVar("F", bound=Callable[..., Any])

_facts: dict[Path, dict[str, Any]] = {}  # this process's copy of each facts file, read once


@functools.cache
def libraries() -> str:
    """The versions the facts hold for, read without importing the libraries, and a digest of the finders' code."""
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} -")
    here = Path(__file__).parent
    code = hashlib.sha256(b"".join((here / name).read_bytes() for name in FINDERS)).hexdigest()[:16]
    return ", ".join([*versions, f"code {code}"])


def remembered(kind: str, encode: Callable[[Any], Any] = lambda v: v,
               decode: Callable[[Any], Any] = lambda v: v) -> Callable[[F], F]:
    """Keep what the decorated function returns for its arguments (JSON: ``encode`` and ``decode`` it)."""

    def decorator(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = f"{kind} {json.dumps([args, kwargs], sort_keys=True)}"
            facts = _known()
            if key in facts:
                return decode(facts[key])
            value = function(*args, **kwargs)
            _remember(key, encode(value))
            return value

        return wrapper  # type: ignore[return-value]

    return decorator


def _path() -> Path:
    return cache_home() / FACTS_FILE


def _known() -> dict[str, Any]:
    path = _path()
    if path not in _facts:
        _facts[path] = _read(path)
    return _facts[path]


def _read(path: Path) -> dict[str, Any]:
    """The facts on disk for these libraries; none when the file is missing, unreadable or of other versions."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("libraries") != libraries() or not isinstance(data.get("facts"), dict):
        return {}
    return data["facts"]


def _remember(key: str, value: Any) -> None:
    """Add one fact, to this process's copy and to the file (merged with what other commands wrote meanwhile)."""
    path = _path()
    facts = _known()
    facts[key] = value
    on_disk = {**_read(path), **facts}
    with contextlib.suppress(OSError):  # a cache that cannot be written only costs the next command its time
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".model-facts-", delete=False) as handle:
            json.dump({"libraries": libraries(), "facts": on_disk}, handle)
        os.replace(handle.name, path)
