"""What names the YAML accepts, with their parameters: the lines of ``tune-app list``.

Example:
    >>> catalog("amp")
    ['off', 'fp16', 'bf16', 'auto']
    >>> catalog("models", "timm/resnet1?")
    ['timm/resnet18', '(1 models)']
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from ..errors import SpecError

TOPICS = ("knobs", "losses", "schedulers", "optimizers", "augments", "models", "datasets", "search_algs", "trial_schedulers",
          "amp", "metrics")


def catalog(what: str, pattern: str | None = None) -> list[str]:
    """The lines that list ``what`` (one of :data:`TOPICS`); ``pattern`` filters models (``timm/resnet*``)."""
    from ..sweep.strategies import SEARCH_ALGS, TRIAL_SCHEDULERS
    from ..training import DATASETS, KNOBS, LOSSES, LR_SCHEDULES, METRICS
    from ..training.augment_policies import AUGMENTS
    from ..training.config import AMP_MODES
    from ..training.optimizers import OPTIMIZERS

    registries = {"losses": LOSSES, "schedulers": LR_SCHEDULES, "optimizers": OPTIMIZERS, "augments": AUGMENTS,
                  "search_algs": SEARCH_ALGS, "trial_schedulers": TRIAL_SCHEDULERS}
    if what in registries:
        return _registry_lines(registries[what])
    if what == "models":
        return _models(pattern or "timm/*")
    if what == "datasets":
        return list(DATASETS)
    if what == "amp":
        return list(AMP_MODES)
    if what == "metrics":
        return [f"{task}: " + ", ".join(f"{m} ({mode})" for m, mode in metrics.items())
                for task, metrics in METRICS.items()]
    if what == "knobs":
        return [f"{k}: {v.describe() if hasattr(v, 'describe') else 'one of ' + ', '.join(v)}"
                for k, v in KNOBS.items()]
    raise SpecError(f"nothing to list under {what!r}; choose from {', '.join(TOPICS)}")


def _registry_lines(entries: Mapping[str, Any]) -> list[str]:
    lines = []
    for name, info in entries.items():
        params = ", ".join(f"{k} ({p.describe()})" for k, p in info.params.items())
        lines.append(f"{name:12s} {info.help}" + (f"\n{'':12s} params: {params}" if params else ""))
    return lines


def _models(pattern: str) -> list[str]:
    from ..training.models import MODEL_SOURCES

    source, _, arch = pattern.partition("/")
    if source not in MODEL_SOURCES:
        raise SpecError(f"unknown model source {source!r}; known: {', '.join(MODEL_SOURCES)}")
    names = [f"{source}/{n}" for n in MODEL_SOURCES[source].list_names() if fnmatch.fnmatch(n, arch or "*")]
    return [*names, f"({len(names)} models)"]
