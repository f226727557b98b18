"""``tune-app extend DIR --trials N``: more trials in a finished experiment, continuing its study.

The extension runs another Tuner in the same directory with the experiment's own spec,
``N`` trials and no ``points_to_evaluate`` (they ran already). Its searcher opens the
experiment's study (``optuna.db`` or ``tune.study_storage``), so it proposes from
everything the experiment learned; an experiment whose study was never stored (made
before tune-app kept one) gets it rebuilt from its trials first.

Example:
    >>> extension_seed(0, 12)   # a sampler seeded as before would propose the same points again
    12
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from .location import Location
from .study import study_storage, study_trial_count
from .warm_start import check_warm_start, load_warm_start

if TYPE_CHECKING:
    from ..spec import ExperimentSpec

UNFINISHED = ("RUNNING", "PENDING", "PAUSED")


@dataclass
class Extension:
    """What an extension runs: ``spec`` (``N`` trials, a fresh seed), the study's ``warm`` trials when
    it must be rebuilt, and how many trials the experiment held ``before``."""

    spec: ExperimentSpec
    warm: list[Any]
    before: int


def extension_seed(seed: int, before: int) -> int:
    """The search seed of an extension: the experiment's, moved on by the trials it holds."""
    return (seed + before) % 2**32


def plan_extension(spec: ExperimentSpec, location: Location, trials: int) -> Extension:
    """Check that the experiment can be extended by ``trials`` and say how.

    Raises:
        SpecError: ``trials`` < 1, a search that cannot continue (grid, pbt), or trials still unfinished.
    """
    from ..report.results import read_trials

    if trials < 1:
        raise SpecError(f"--trials must be >= 1, got {trials}")
    check_warm_start(spec.tune.search_alg, spec.tune.trial_scheduler, "tune.search_alg")
    unfinished = [t.trial_id for t in read_trials(location.local) if t.status in UNFINISHED]
    if unfinished:
        raise SpecError(f"{location} has {len(unfinished)} unfinished trials ({', '.join(unfinished[:3])}); finish "
                        f"them first with tune-app resume {location}")
    before = study_trial_count(study_storage(spec.tune.study_storage, location.local), spec.name)
    warm: list[Any] = []
    if before is None:
        warm = load_warm_start([str(location)], spec.space, spec.metric, spec.mode, spec.train.epochs).trials
        before = len(warm)
    extended = spec.with_tune(num_samples=trials, points_to_evaluate=[], seed=extension_seed(spec.search_seed, before))
    return Extension(extended, warm, before)
