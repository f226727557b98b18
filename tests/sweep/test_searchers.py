"""tune-app's searchers outside a sweep: their saved state survives the experiment moving."""

from __future__ import annotations

import pickle
import shutil

import optuna
import pytest

from tune_app.experiment.study import RAY_TRIAL_ID, study_storage
from tune_app.spec import validate_spec

from ..conftest import TINY_SPEC

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def _study_search(experiment):
    from tune_app.sweep.searchers import StudySearch

    spec = validate_spec({**TINY_SPEC, "tune": {**TINY_SPEC["tune"], "scheduler": "fifo"}})
    setup = spec.search_setup()
    return StudySearch(space=setup.space.define_by_run, metric=spec.metric, mode=spec.mode,
                       sampler=optuna.samplers.RandomSampler(seed=0), points=[], storage=study_storage(None, experiment),
                       study_name="tiny", epochs=spec.train.epochs)


@pytest.mark.parametrize("moved", [True, False], ids=["moved", "copied"])
@pytest.mark.parametrize("how", ["pickled", "saved"], ids=["tuner.pkl", "searcher-state"])
def test_a_study_search_saved_in_one_directory_goes_on_in_the_directory_it_moved_to(tmp_path, how, moved):
    from tune_app.sweep.searchers import experiment_at

    old, new = tmp_path / "cluster" / "exp", tmp_path / "laptop" / "exp"
    old.mkdir(parents=True)
    searcher = _study_search(old)
    first, second = searcher.suggest("ray-1"), searcher.suggest("ray-2")
    searcher.on_trial_result("ray-1", {"val_acc": 0.5, "training_iteration": 1, "epoch": 1})
    searcher.on_trial_complete("ray-1", {"val_acc": 0.6, "training_iteration": 2, "epoch": 2})
    if how == "pickled":  # Ray pickles the Tuner, searcher included, into tuner.pkl
        saved = pickle.dumps(searcher)
    else:  # and saves the searcher's state as a file, which restore() reads
        searcher.save(str(old / "searcher-state.pkl"))
    searcher._storage.remove_session()
    # the experiment moves (nothing is left where it was) or is copied (the original stays as it is)
    (shutil.move if moved else shutil.copytree)(old.parent, new.parent)

    with experiment_at(new):
        if how == "pickled":
            restored = pickle.loads(saved)
        else:
            restored = _study_search(new)
            restored.restore(str(new / "searcher-state.pkl"))
    assert restored._storage.url == f"sqlite:///{new / 'optuna.db'}"
    # the trial that was running goes on in the study it was asked from, and new ones join it
    restored.on_trial_complete("ray-2", {"val_acc": 0.7, "training_iteration": 2, "epoch": 2})
    assert restored.suggest("ray-3") not in (first, second)
    study = optuna.load_study(study_name="tiny", storage=study_storage(None, new))
    states = {t.user_attrs.get(RAY_TRIAL_ID): (t.state.name, t.value) for t in study.trials}
    assert states == {"ray-1": ("COMPLETE", 0.6), "ray-2": ("COMPLETE", 0.7), None: ("RUNNING", None)}
    if moved:
        assert not (tmp_path / "cluster").exists()  # no database was made again at the old path
    else:  # the original's study is as it was when copied
        original = optuna.load_study(study_name="tiny", storage=study_storage(None, old))
        assert [t.state.name for t in original.trials] == ["COMPLETE", "RUNNING"]


def test_a_study_elsewhere_is_kept(tmp_path):
    from tune_app.sweep.searchers import experiment_at

    (tmp_path / "shared").mkdir()
    searcher = _study_search(tmp_path / "shared")  # e.g. tune.study_storage: one database for many experiments
    searcher.suggest("ray-1")
    saved = pickle.dumps(searcher)
    (tmp_path / "exp").mkdir()  # the experiment, which has no optuna.db of its own
    with experiment_at(tmp_path / "exp"):
        assert pickle.loads(saved)._storage.url == f"sqlite:///{tmp_path / 'shared' / 'optuna.db'}"
