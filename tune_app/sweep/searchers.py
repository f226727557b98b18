"""Ray Tune searchers of tune-app's own: a precomputed list of configs (grid search over a
conditional space), and Ray's OptunaSearch over a study kept in a database.

It imports Ray: imported only when a search algorithm is built.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from ..experiment.study import DB_FILE, EPOCHS, RAY_TRIAL_ID, VALUE, rdb_storage
from ..trial_result import FAILURE, ITERATION, epochs_trained
from . import compat


class PointsSearcher(Searcher):
    """Hands out a precomputed list of flat configs, then reports FINISHED.

    Ray's own grid search cannot express conditional parameters; the space
    expands the conditional tree itself (see ``SearchSpace.grid``).
    """

    def __init__(self, points: list[dict[str, Any]], metric: str, mode: str) -> None:
        super().__init__(metric=metric, mode=mode)
        self.points = points
        self.next_index = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | str:
        if self.next_index >= len(self.points):
            return Searcher.FINISHED
        self.next_index += 1
        return dict(self.points[self.next_index - 1])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps({"points": self.points, "next_index": self.next_index}))

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text())
        self.points, self.next_index = state["points"], state["next_index"]


_experiment_now_at: Path | None = None  # set while an experiment is resumed (see experiment_at)


@contextlib.contextmanager
def experiment_at(directory: Path) -> Iterator[None]:
    """While Ray restores a searcher, the experiment's directory now: it may have moved since it was saved."""
    global _experiment_now_at
    before, _experiment_now_at = _experiment_now_at, Path(directory)
    try:
        yield
    finally:
        _experiment_now_at = before


def _relocated(url: str) -> str:
    """The experiment's own SQLite study where the experiment is now, if it moved or was copied.

    Ray saves the searcher (in ``tuner.pkl`` and the searcher state) with the database's
    absolute path: an experiment moved off a cluster would resume against a file that is no
    longer there, and a copy would write into the original's study. An experiment whose
    study lives elsewhere (``tune.study_storage``) has no ``optuna.db`` of its own.
    """
    if not url.startswith("sqlite:///") or _experiment_now_at is None:
        return url
    saved, here = Path(url.removeprefix("sqlite:///")), _experiment_now_at / DB_FILE
    return f"sqlite:///{here}" if saved.name == DB_FILE and here.is_file() and saved != here else url


class StudySearch(OptunaSearch):
    """Ray's OptunaSearch over a study in a database, told what ``results.csv`` reports.

    Ray's own tells a trial's last value, and a trial the trial scheduler stopped as
    COMPLETE. Here a trial that ran its whole budget is COMPLETE with its best value
    over its epochs; a stopped one is PRUNED (its per-epoch values stay as intermediate
    values) with that best value as the user attribute ``value``; a failed one FAIL.
    Every trial carries its Ray trial id (``ray_trial_id``). The study is opened with
    ``load_if_exists``: ``tune-app extend`` continues it; ``warm`` trials (finished trials
    of earlier experiments) are added once, before anything is proposed.
    """

    def __init__(self, *, space: Any, metric: str, mode: str, sampler: Any, points: list[dict[str, Any]],
                 storage: str, study_name: str, epochs: int, warm: list[Any] = ()) -> None:
        self._budget = epochs
        self._best: dict[str, float] = {}
        self._epochs: dict[str, int] = {}
        self._reported: dict[str, set] = {}  # trial id -> the steps told to Optuna
        super().__init__(space=space, metric=metric, mode=mode, sampler=sampler, points_to_evaluate=points or None,
                         study_name=study_name, storage=rdb_storage(storage))
        compat.check_optuna_search(self)  # the private attributes used below, by name
        for trial in warm:
            self._ot_study.add_trial(trial)

    # ------------------------------------------------------------ saved state
    # Ray pickles the searcher (tuner.pkl, and save() for its searcher state). Optuna's storage,
    # study and trials hold a database connection and its URL: the state keeps the URL and the
    # study's trial ids instead, and reconnects, to the moved database if it moved. The attributes
    # are Ray's OptunaSearch's own (compat.OPTUNA_SEARCH_ATTRIBUTES).
    _CONNECTED = ("_storage", "_ot_study", "_ot_trials")

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in self._CONNECTED}
        if self._ot_study is not None:
            state["_study_url"] = self._storage.url
            state["_trial_ids"] = {ray_id: compat.optuna_trial_id(trial) for ray_id, trial in self._ot_trials.items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import optuna

        state = dict(state)
        url, trial_ids = state.pop("_study_url", None), state.pop("_trial_ids", {})
        self.__dict__.update(state)
        self._storage = self._ot_study = None
        self._ot_trials = {}
        if url is not None:
            self._storage = rdb_storage(_relocated(url))
            self._ot_study = optuna.load_study(study_name=self._study_name, storage=self._storage,
                                               sampler=self._sampler)
            self._ot_trials = {ray_id: compat.optuna_trial(self._ot_study, trial_id)
                               for ray_id, trial_id in trial_ids.items()}

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.__getstate__(), handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:  # the driver's own file, in the experiment directory
            self.__setstate__(pickle.load(handle))

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        self._take(trial_id, result)
        self._reported.setdefault(trial_id, set()).add(result.get(ITERATION))
        if trial_id in self._completed_trials:
            return
        try:
            super().on_trial_result(trial_id, result)
        except UpdateFinishedTrialError:
            # A resumed trial the study had already finished before the driver died: Ray's saved
            # state still said running, so it reports its final result again. The study has it.
            self._completed_trials.add(trial_id)

    def _take(self, trial_id: str, result: dict) -> bool:
        """Keep the trial's best value and epochs; whether the result holds a finite value."""
        value = result.get(self.metric)
        self._epochs[trial_id] = max(self._epochs.get(trial_id, 0), epochs_trained(result))
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            return False
        best = self._best.get(trial_id)
        if best is None or (value > best if self.mode == "max" else value < best):
            self._best[trial_id] = value
        return True

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        import optuna

        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        trial = self._ot_trials[trial_id]
        # The result that ends a trial may come here only (the one a trial scheduler stopped it at),
        # not through on_trial_result.
        if result and not error and self._take(trial_id, result) and \
                result.get(ITERATION) not in self._reported.get(trial_id, ()):
            trial.report(result[self.metric], result[ITERATION])
        best, epochs = self._best.get(trial_id), self._epochs.get(trial_id, 0)
        trial.set_user_attr(RAY_TRIAL_ID, trial_id)
        trial.set_user_attr(EPOCHS, epochs)
        if best is not None:
            trial.set_user_attr(VALUE, best)
        if error or (result or {}).get(FAILURE) or best is None:
            state, value = optuna.trial.TrialState.FAIL, None
        elif epochs < self._budget:
            state, value = optuna.trial.TrialState.PRUNED, None
        else:
            state, value = optuna.trial.TrialState.COMPLETE, best
        try:
            self._ot_study.tell(trial, value, state=state)
        except Exception as exc:  # the study must never stop the sweep
            logging.getLogger(__name__).warning("could not record trial %s in the study: %s", trial_id, exc)
        self._completed_trials.add(trial_id)
