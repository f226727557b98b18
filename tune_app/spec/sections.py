"""The sections of a spec file as pydantic models, each with the rules about itself.

Types, ranges and unknown keys are pydantic's to check. A rule about one section
that pydantic cannot express lives on that section's model as ``problems(at)``; rules
that join sections are the named checks of :mod:`.checks`. Models are frozen: a spec
changed after validation is a new spec (``model_copy(update=...)``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ..errors import SpecError
from ..schema import OptionError, check_options, unknown_name
from ..sweep.strategies import SEARCH_ALGS, TRIAL_SCHEDULERS, SearchSetup, StrategyInfo
from ..training import METRICS, TASKS, TrainConfig
from ..training.datasets import DataConfig, scale_problem
from ..training.optimizers import OPTIMIZERS, optimizer_options
from ..trial_result import RUN_KEYS, RUN_SEED
from .loggers import LOGGERS
from .space import SearchSpace

# SQLAlchemy URLs of the databases an Optuna study may live in (the driver of each needs the driver package).
STORAGE_PATTERN = re.compile(r"^(sqlite|postgresql|mysql)(\+\w+)?://\S*$")

Problem = tuple[str, str]  # (dotted path in the file, what is wrong)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def user_path(text: str) -> Path:
    """``~`` expanded where it can be (``~nosuchuser`` stays as written, and does not exist)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        return Path(text)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    def problems(self, at: str) -> list[Problem]:
        """What is wrong within this section (``at`` is its dotted path), beyond types and ranges."""
        return []


class DataSpec(_Section):
    dataset: str = "digits"
    train_dir: str | None = None  # dataset folder: ImageFolder (classification) or images/ + masks/
    val_dir: str | None = None
    image_size: int = Field(32, ge=8, le=2048)
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(0, ge=0)
    binary: bool = False  # segmentation: one foreground class
    hflip: bool = False  # augmentation: random horizontal flips of training images
    scale: list[float] | None = Field(None, min_length=2, max_length=2)  # augmentation: RandomResizedCrop area range
    crop_pct: float | None = Field(None, gt=0, le=1)  # folder: validation's centre share; default: the model's, or 0.875
    interpolation: Literal["bilinear", "bicubic", "nearest", "lanczos"] | None = None  # folder: default the model's
    cache: Literal["auto", "off"] = "auto"  # folder: decode once into a memory-mapped cache, or read per item
    cache_dir: str | None = None  # folder: where the cache lives (default $TUNE_APP_CACHE/images, ~/.cache/tune-app)
    cache_max_gb: float = Field(50.0, gt=0)  # folder: older caches beyond this total are removed
    skip_bad_images: bool = False  # folder: leave unreadable images out (counted) instead of stopping

    def problems(self, at: str) -> list[Problem]:
        found = []
        if self.dataset == "folder":
            if not self.train_dir:
                found.append((f"{at}.train_dir", "the folder dataset needs train_dir (class sub-folders, or images/ "
                                                 "and masks/ for segmentation)"))
            for key in ("train_dir", "val_dir"):
                folder = getattr(self, key)
                if folder and not user_path(folder).is_dir():
                    found.append((f"{at}.{key}", f"no such directory: {folder}"))
        if problem := scale_problem(self.scale):
            found.append((f"{at}.scale", problem))
        return found

    def data_config(self, task: str) -> DataConfig:
        """The training layer's data config: this section's fields, one to one, but the batch size."""
        return DataConfig(task=task, **self.model_dump(exclude={"batch_size"}))


class ModelSpec(_Section):
    name: str = "timm/resnet18"
    encoder: str | None = None  # smp/<arch>: the timm encoder, e.g. resnet18
    pretrained: Any = False  # true: the library's hub/cache; a .safetensors/.pth path; an exported best_model/

    @field_validator("pretrained", mode="before")
    @classmethod
    def _pretrained(cls, value: Any) -> Any:
        if isinstance(value, (bool, str)):
            return value
        raise ValueError(f"must be false, true (the library's weights) or a path to a weights file, got {value!r}")
    freeze_bn: bool = True  # frozen BatchNorm layers stay in eval mode

    def problems(self, at: str) -> list[Problem]:
        if isinstance(self.pretrained, str) and not user_path(self.pretrained).exists():
            return [(f"{at}.pretrained", f"no weights file at {self.pretrained!r} (give a .safetensors or .pth file, "
                                         f"a model directory tune-app export wrote, true for the library's cache, "
                                         f"or false)")]
        return []


class TrainSpec(_Section):
    epochs: int = Field(8, ge=1)
    optimizer: str | dict[str, Any] = "adamw"  # a name, or {name: adamw, betas: [0.9, 0.95], ...}
    seed: int = Field(0, ge=0, le=2**32 - 1)
    metric: str = "val_acc"
    mode: Literal["max", "min"] | None = None  # default: the metric's natural direction
    device: str = "auto"
    precise_bn: Any = "auto"  # auto | off | N: BatchNorm statistics recomputed over N training batches
    deterministic: bool = False  # reproducible kernels (cuDNN deterministic, torch deterministic algorithms)

    @field_validator("precise_bn", mode="before")
    @classmethod
    def _precise_bn(cls, value: Any) -> Any:
        if value is False or value == "off":  # `off` written bare is YAML's false
            return "off"
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError(f"must be auto, off or a number of training batches >= 1, got {value!r}")

    def problems(self, at: str) -> list[Problem]:
        found = []
        given = {"name": self.optimizer} if isinstance(self.optimizer, str) else dict(self.optimizer)
        name = given.pop("name", None)
        if name not in OPTIMIZERS:
            found.append((f"{at}.optimizer", unknown_name(name, OPTIMIZERS)))
        else:
            found += _option_problems(f"{at}.optimizer", repr(name), OPTIMIZERS[name].params, given, "parameter")
        if self.device not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", self.device):
            found.append((f"{at}.device", f"must be auto, cpu, cuda or cuda:N, got {self.device!r}"))
        return found


class ResourcesSpec(_Section):
    cpu: float = Field(1.0, gt=0)
    gpu: Any = 0.0  # a number (fractional packs trials on one card) or auto: 1 if the cluster has GPUs

    @field_validator("gpu", mode="before")
    @classmethod
    def _gpu(cls, value: Any) -> Any:
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"must be a number of GPUs per trial (0.25 packs four trials on a card) or auto, "
                             f"got {value!r}")
        return float(value)

    def problems(self, at: str) -> list[Problem]:
        gpu = self.gpu
        if gpu != "auto" and gpu < 0:
            return [(f"{at}.gpu", f"must be >= 0 or auto, got {gpu}")]
        if gpu != "auto" and gpu > 1 and gpu != int(gpu):
            return [(f"{at}.gpu", f"a fraction of a GPU must be <= 1 (several trials share one card); above 1 it "
                                  f"must be a whole number, got {gpu}")]
        return []


class TuneSpec(_Section):
    num_samples: int = Field(8, ge=1)
    search_alg: str = "optuna"  # or {name: optuna, n_startup_trials: 5}
    search_alg_options: dict[str, Any] = Field(default_factory=dict)
    # The trial scheduler (YAML `tune.scheduler`; `search.scheduler` is the LR schedule).
    trial_scheduler: str = Field("asha", alias="scheduler")  # or {name: asha, grace_period: 2}
    trial_scheduler_options: dict[str, Any] = Field(default_factory=dict, alias="scheduler_options")
    points_to_evaluate: list[dict[str, Any]] = Field(default_factory=list)  # known-good configs tried first
    max_concurrent: int | None = Field(None, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    checkpoint_every: int = Field(1, ge=0)  # epochs between checkpoints; 0: none (no restore after a failure)
    # While a trial can continue it keeps its `keep_checkpoints` best checkpoints (by the objective) and
    # its latest; once it cannot, only the `keep_best_trials` best trials keep anything: their best weights.
    keep_checkpoints: int = Field(1, ge=1)
    keep_best_trials: int = Field(3, ge=1)
    max_failures: int = Field(2, ge=0)  # restarts of a failed trial, from its last checkpoint
    # Out of memory: the trial retries its batch in micro-batches of half the size (twice the gradient
    # accumulation: the same training), halving again down to oom_min_batch images.
    oom_retry: bool = True
    oom_min_batch: int = Field(8, ge=1)
    address: str | None = None
    dashboard: Any = False  # local Ray's dashboard: true -> 127.0.0.1:8265, or "host:port"

    @field_validator("dashboard", mode="before")
    @classmethod
    def _dashboard(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, str) and re.fullmatch(r"[\w.\-]+(:\d{1,5})?", value)):
            return value
        raise ValueError(f"must be false, true (127.0.0.1:8265) or host:port, got {value!r}")
    storage: str = "tune_results"
    study_storage: str | None = None  # the Optuna study's database; default: <experiment>/optuna.db (SQLite)
    loggers: list[str] = Field(default_factory=list)  # per-trial tracking: mlflow, tensorboard, wandb
    seed: int | None = Field(None, ge=0, le=2**32 - 1)  # search seed; default: train.seed

    @model_validator(mode="before")
    @classmethod
    def _split_named_options(cls, data: Any) -> Any:
        # `scheduler: {name: asha, grace_period: 2}` -> scheduler: asha, scheduler_options: {grace_period: 2}
        if isinstance(data, dict):
            data = dict(data)
            for key in ("search_alg", "scheduler"):
                value = data.get(key)
                if isinstance(value, dict) and "name" in value:
                    options = {k: v for k, v in value.items() if k != "name"}
                    data[key] = value["name"]
                    given = data.get(f"{key}_options", {})
                    # a malformed *_options is left for the field's own validation to report
                    data[f"{key}_options"] = {**given, **options} if isinstance(given, dict) else given
        return data

    def problems(self, at: str) -> list[Problem]:
        found = []
        if "://" in self.storage and not re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", self.storage):
            found.append((f"{at}.storage", f"must be a directory or a URI such as s3://bucket/path, got "
                                           f"{self.storage!r}"))
        if self.study_storage is not None and not STORAGE_PATTERN.match(self.study_storage):
            found.append((f"{at}.study_storage", f"must be a database URL: postgresql://user:password@host/db, "
                                                 f"mysql://user:password@host/db or sqlite:///path/to/file.db, got "
                                                 f"{self.study_storage!r}"))
        for i, name in enumerate(self.loggers):
            if name not in LOGGERS:
                found.append((f"{at}.loggers[{i}]", unknown_name(name, LOGGERS, "logger")))
        if len(set(self.loggers)) != len(self.loggers):
            found.append((f"{at}.loggers", f"names a logger twice: {self.loggers}"))
        for key, name, options, registry in (
                ("search_alg", self.search_alg, self.search_alg_options, SEARCH_ALGS),
                ("scheduler", self.trial_scheduler, self.trial_scheduler_options, TRIAL_SCHEDULERS)):
            if name not in registry:
                found.append((f"{at}.{key}", unknown_name(name, registry)))
            else:
                found += _option_problems(f"{at}.{key}", repr(name), registry[name].params, options, "option")
        found += self.resources.problems(f"{at}.resources")
        if self.dashboard and self.address:
            found.append((f"{at}.dashboard", "an existing cluster serves its own dashboard (see `ray status` on its "
                                             "head node); drop dashboard or address"))
        return found

    def canonical(self) -> TuneSpec:
        """This section with the strategies' options in canonical form (``reduction_factor: 2`` -> 2.0)."""
        return self.model_copy(update={
            "search_alg_options": _canonical(SEARCH_ALGS[self.search_alg], self.search_alg_options),
            "trial_scheduler_options": _canonical(TRIAL_SCHEDULERS[self.trial_scheduler], self.trial_scheduler_options),
        })


def _option_problems(at: str, owner: str, schema: Mapping[str, Any], given: Mapping[str, Any],
                     what: str) -> list[Problem]:
    """``check_options`` as spec problems: an unknown option at ``at``, a bad value at ``at.<option>``."""
    try:
        check_options(owner, schema, given, what)
    except OptionError as exc:
        return [(at, str(exc)) if exc.unknown else (f"{at}.{exc.key}", exc.reason)]
    return []


def _canonical(info: StrategyInfo, options: Mapping[str, Any]) -> dict[str, Any]:
    return check_options("", info.params, options)


class ExperimentSpec(_Section):
    """A whole experiment: what to train (data, model, train) and how to search (search, tune)."""

    name: str = "experiment"
    task: str = "classification"
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    search: dict[str, Any] = Field(default_factory=dict)
    tune: TuneSpec = Field(default_factory=TuneSpec)

    _space: SearchSpace = PrivateAttr()

    @property
    def space(self) -> SearchSpace:
        return self._space

    @property
    def metric(self) -> str:
        return self.train.metric

    @property
    def mode(self) -> str:
        return self.train.mode or METRICS[self.task][self.train.metric]

    @property
    def search_seed(self) -> int:
        return self.train.seed if self.tune.seed is None else self.tune.seed

    def problems(self, at: str = "") -> list[Problem]:
        """The name, and each section's own rules; the task's validity is reported alone (all else depends on it)."""
        found = []
        if not NAME_PATTERN.match(self.name):
            found.append(("name", f"must be a plain directory name (letters, digits, '.', '_', '-'; at most 100, "
                                  f"not starting with '.' or '-'), got {self.name!r}"))
        if self.task not in TASKS:
            return found + [("task", unknown_name(self.task, TASKS))]
        for key in ("data", "model", "train", "tune"):
            found += getattr(self, key).problems(key)
        return found

    def points_to_evaluate(self) -> list[dict[str, Any]]:
        """``tune.points_to_evaluate`` as flat configs, tried before the search algorithm's own."""
        return [self.space.flatten(point, f"tune.points_to_evaluate[{i}]")
                for i, point in enumerate(self.tune.points_to_evaluate)]

    def trial_count(self) -> int:
        """Trials the search runs: the grid size for grid search, else ``num_samples``."""
        return self.space.grid_size() if self.tune.search_alg == "grid" else self.tune.num_samples

    def search_setup(self) -> SearchSetup:
        """What the search algorithm and the trial scheduler are built from."""
        return SearchSetup(space=self.space, metric=self.metric, mode=self.mode, epochs=self.train.epochs,
                           seed=self.search_seed, points=tuple(self.points_to_evaluate()))

    def train_config(self, flat: Mapping[str, Any] | None = None) -> TrainConfig:
        """The complete training config of one trial; ``flat=None`` uses every default.

        A ``seed`` in ``flat`` (a confirmation run's) replaces ``train.seed``.
        """
        flat, seed = _searched(self.space.defaults() if flat is None else flat)
        knobs = self.space.nest(flat)
        data = self.data.data_config(self.task)
        augmentation = {name: knobs.pop(name) for name in ("hflip", "scale") if name in knobs}  # searched: data's
        base = dict(
            model=self.model.name,
            encoder=self.model.encoder,
            pretrained=self.model.pretrained,
            freeze_bn=self.model.freeze_bn,
            data=dataclasses.replace(data, **augmentation) if augmentation else data,
            batch_size=self.data.batch_size,
            epochs=self.train.epochs,
            optimizer=optimizer_options(self.train.optimizer),
            precise_bn=self.train.precise_bn,
            oom_retry=self.tune.oom_retry,
            oom_min_batch=self.tune.oom_min_batch,
            seed=self.train.seed if seed is None else seed,
            deterministic=self.train.deterministic,
            device=self.train.device,
        )
        return TrainConfig(**{**base, **knobs})

    def with_tune(self, **changes: Any) -> ExperimentSpec:
        """This spec with fields of ``tune:`` changed (``tune-app extend``: its trial count and seed)."""
        changed = self.model_copy(update={"tune": self.tune.model_copy(update=changes)})
        changed._space = self._space
        return changed

    def with_weights(self, pretrained: bool | str) -> ExperimentSpec:
        """This spec with ``model.pretrained`` resolved (a weights file the driver found, or False)."""
        changed = self.model_copy(update={"model": self.model.model_copy(update={"pretrained": pretrained})})
        changed._space = self._space
        return changed

    def with_weights_resolved(self) -> ExperimentSpec:
        """``pretrained: true`` -> the cached weights file, found (or fetched) once here, never by each trial.

        Raises:
            SpecError: The weights cannot be found (the message says how to pass a local file).
        """
        from ..training.models import PretrainedWeightsError, resolve_pretrained

        try:
            resolved = resolve_pretrained(self.model.name, self.model.pretrained, encoder=self.model.encoder)
        except PretrainedWeightsError as exc:
            raise SpecError([("model.pretrained", str(exc))]) from None
        return self.with_weights(str(resolved) if resolved else False)

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec as plain data (what ``spec.yaml`` holds), mode filled in."""
        data = self.model_dump(mode="json", by_alias=True)
        data["train"]["mode"] = self.mode
        return data

    def fixed_at(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        """This spec with ``search:`` fixed at one trial's values: runnable with ``tune-app train``."""
        flat, seed = _searched(flat)
        data = self.to_dict()
        data["search"] = self.space.nest(flat)
        if seed is not None:
            data["train"]["seed"] = seed
        return data


def _searched(flat: Mapping[str, Any]) -> tuple[dict[str, Any], int | None]:
    """A trial's searched values apart from the keys of a confirmation run (its seed, the trial it repeats)."""
    searched = {k: v for k, v in flat.items() if k not in RUN_KEYS}
    return searched, (int(flat[RUN_SEED]) if flat.get(RUN_SEED) is not None else None)
