"""YAML file -> validated, typed experiment spec.

``load_spec`` reads a file with a safe loader, applies ``--set`` overrides, then
validates everything a run depends on before anything starts: unknown keys, wrong
types, impossible ranges and unknown names are reported with the dotted path of the
field, the bad value and what is allowed, all problems at once.

Example:
    >>> spec = load_spec("search_spaces/quickstart.yaml", overrides=["train.epochs=2"])
    >>> spec.train.epochs
    2
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from .errors import SpecError
from .yamlfile import load_yaml
from .runner import CONTINUOUS_ONLY, SEARCH_ALGS, TRIAL_SCHEDULERS, pbt_mutations
from .space import MAX_GRID, Categorical, Conditional, Fixed, IntRange, SearchSpace, SpaceError, parse_space
from .training import KNOBS, METRICS, TASKS, TrainConfig
from .training.data import DataConfig, check_data
from .training.freeze import check_freeze_depth, stage_count_for
from .training.losses import LOSSES
from .training.models import check_model_name
from .training.optimizers import OPTIMIZERS

MAX_SPEC_BYTES = 1_000_000
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Knobs that have a home outside `search:` too; setting both would be ambiguous.
KNOB_HOMES = {"optimizer": "train.optimizer", "batch_size": "data.batch_size"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


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


class ModelSpec(_Section):
    name: str = "timm/resnet18"
    encoder: str | None = None  # smp/<arch>: the timm encoder, e.g. resnet18
    pretrained: Any = False  # true: the library's hub/cache; or a .safetensors/.pth path

    @field_validator("pretrained", mode="before")
    @classmethod
    def _pretrained(cls, value: Any) -> Any:
        if isinstance(value, (bool, str)):
            return value
        raise ValueError(f"must be false, true (the library's weights) or a path to a weights file, got {value!r}")
    freeze_bn: bool = True  # frozen BatchNorm layers stay in eval mode


class TrainSpec(_Section):
    epochs: int = Field(8, ge=1)
    optimizer: str = "adamw"
    seed: int = Field(0, ge=0, le=2**32 - 1)
    metric: str = "val_acc"
    mode: Literal["max", "min"] | None = None  # default: the metric's natural direction
    device: str = "auto"


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


class TuneSpec(_Section):
    num_samples: int = Field(8, ge=1)
    search_alg: str = "optuna"  # or {name: optuna, n_startup_trials: 5}
    search_alg_options: dict[str, Any] = Field(default_factory=dict)
    scheduler: str = "asha"  # or {name: asha, grace_period: 2}
    scheduler_options: dict[str, Any] = Field(default_factory=dict)
    points_to_evaluate: list[dict[str, Any]] = Field(default_factory=list)  # known-good configs tried first
    max_concurrent: int | None = Field(None, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    checkpoint_every: int = Field(1, ge=0)  # epochs between checkpoints; 0: none (no restore after a failure)
    keep_checkpoints: int = Field(2, ge=1)  # per trial
    max_failures: int = Field(2, ge=0)  # restarts of a failed trial, from its last checkpoint
    address: str | None = None
    dashboard: Any = False  # local Ray's dashboard: true -> 127.0.0.1:8265, or "host:port"

    @field_validator("dashboard", mode="before")
    @classmethod
    def _dashboard(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, str) and re.fullmatch(r"[\w.\-]+(:\d{1,5})?", value)):
            return value
        raise ValueError(f"must be false, true (127.0.0.1:8265) or host:port, got {value!r}")
    storage: str = "tune_results"
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

    def points_to_evaluate(self) -> list[dict[str, Any]]:
        """``tune.points_to_evaluate`` as flat configs, tried before the search algorithm's own."""
        return [self.space.flatten(point, f"tune.points_to_evaluate[{i}]")
                for i, point in enumerate(self.tune.points_to_evaluate)]

    def trial_count(self) -> int:
        """Trials the search runs: the grid size for grid search, else ``num_samples``."""
        return self.space.grid_size() if self.tune.search_alg == "grid" else self.tune.num_samples

    def train_config(self, flat: Mapping[str, Any] | None = None) -> TrainConfig:
        """The complete training config of one trial; ``flat=None`` uses every default."""
        knobs = self.space.nest(self.space.defaults() if flat is None else flat)
        base = dict(
            task=self.task,
            model=self.model.name,
            encoder=self.model.encoder,
            pretrained=self.model.pretrained,
            freeze_bn=self.model.freeze_bn,
            dataset=self.data.dataset,
            train_dir=self.data.train_dir,
            val_dir=self.data.val_dir,
            image_size=self.data.image_size,
            batch_size=self.data.batch_size,
            num_workers=self.data.num_workers,
            binary=self.data.binary,
            hflip=self.data.hflip,
            scale=self.data.scale,
            epochs=self.train.epochs,
            optimizer=self.train.optimizer,
            seed=self.train.seed,
            device=self.train.device,
        )
        return TrainConfig(**{**base, **knobs})

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec as plain data (what ``spec.yaml`` holds), mode filled in."""
        data = self.model_dump(mode="json")
        data["train"]["mode"] = self.mode
        return data

    def fixed_at(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        """This spec with ``search:`` fixed at one trial's values: runnable with ``tune-app train``."""
        data = self.to_dict()
        data["search"] = self.space.nest(flat)
        return data


# ------------------------------------------------------------------- loading
def load_spec(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    name: str | None = None,
    storage: str | None = None,
    address: str | None = None,
    dashboard: bool | str | None = None,
) -> ExperimentSpec:
    """Read, override and validate a spec file; raise :class:`SpecError` on any problem."""
    source = str(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(f"the file must hold a mapping of sections (name, data, model, train, search, tune), "
                        f"got {type(raw).__name__}", source)
    raw.setdefault("name", Path(path).stem)
    for item in overrides:
        apply_override(raw, item)
    for key, value in (("name", name), ("tune.storage", storage), ("tune.address", address),
                       ("tune.dashboard", dashboard)):
        if value is not None:
            _set_path(raw, _split_path(key), value, key)
    return validate_spec(raw, source)


def read_yaml(path: str | Path) -> Any:
    """Load one YAML document with the safe loader; errors name the line and column."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"no such file: {path}")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise SpecError(f"the file is {path.stat().st_size} bytes; a spec may be at most {MAX_SPEC_BYTES}", str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"invalid YAML: the file is not UTF-8 text ({exc})", str(path)) from None
    data = load_yaml(text, str(path))
    if data is None:
        raise SpecError("the file is empty (or only comments); a spec needs at least a model and a search section",
                        str(path))
    return data


def validate_spec(raw: dict[str, Any], source: str | None = None) -> ExperimentSpec:
    """Validate already-loaded spec data (e.g. a round trip of ``to_dict``)."""
    keys = _non_text_keys(raw)
    if keys:
        raise SpecError(keys, source)
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        problems = dict(_pydantic_problem(err) for err in reversed(exc.errors()))  # one per path, the first
        raise SpecError(list(reversed(problems.items())), source) from None
    problems = _check_names(spec)
    if any(path == "task" for path, _ in problems):  # everything else depends on the task
        raise SpecError(problems, source)
    try:
        spec._space = parse_space(spec.search, KNOBS)
    except SpaceError as exc:
        problems.append((exc.path, exc.message))
    else:
        problems += _check_search(spec)
    if problems:
        raise SpecError(problems, source)
    return spec


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``--set dotted.key=value`` (value parsed as YAML) to ``raw`` in place."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(f"--set expects key=value (e.g. train.epochs=3), got {item!r}")
    try:
        value = load_yaml(text) if text.strip() else None
    except SpecError as exc:
        raise SpecError(f"--set {key}: the value {text!r} is not valid YAML ({exc})") from None
    _set_path(raw, _split_path(key), value, key)


_KEY = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\[\d+\])*")
_PART = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(\d+)\]")


def _split_path(key: str) -> list[str | int]:
    if not _KEY.fullmatch(key):
        raise SpecError(f"--set: cannot read the key {key!r}; write dotted names with [i] for list items, "
                        f"e.g. search.loss.choice[1].gamma")
    return [m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _PART.finditer(key)]


def _set_path(raw: Any, parts: list[str | int], value: Any, key: str) -> None:
    node = raw
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list) and not isinstance(part, int):
            raise SpecError(f"--set {key}: {_dotted(parts[:depth])} is a list: write [i] to pick an item")
        child = node[part] if _has(node, part) else None
        if child is None:
            if isinstance(part, int):
                raise SpecError(f"--set {key}: {_dotted(parts[:depth + 1])} does not exist")
            child = node[part] = {}
        if not isinstance(child, (dict, list)):
            raise SpecError(f"--set {key}: {_dotted(parts[:depth + 1])} is {child!r}, not a mapping or list")
        node = child
    last = parts[-1]
    if isinstance(node, list) and not isinstance(last, int):
        raise SpecError(f"--set {key}: {_dotted(parts[:-1])} is a list: write [i] to pick an item")
    if isinstance(node, list) and last >= len(node):
        raise SpecError(f"--set {key}: {_dotted(parts)} does not exist (the list has {len(node)} items)")
    if isinstance(node, dict) and isinstance(last, int):
        raise SpecError(f"--set {key}: {_dotted(parts[:-1])} is a mapping, not a list")
    node[last] = value


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return isinstance(part, str) and part in node
    return isinstance(part, int) and part < len(node)


def _dotted(parts: Sequence[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(parts))


# ---------------------------------------------------------------- checking
# Pydantic names the member of a union that failed (`gpu.float`); users need the field.
_UNION_MEMBER = re.compile(r"^(int|float|str|bool|none|(literal|list|dict|tuple|function-\w+)\[.*\])$")


def _pydantic_problem(err: Mapping[str, Any]) -> tuple[str, str]:
    loc = tuple(err["loc"])
    while loc and isinstance(loc[-1], str) and _UNION_MEMBER.match(loc[-1]):
        loc = loc[:-1]
    path = _dotted(loc)
    if err["type"] == "extra_forbidden":
        fields = _fields_at(loc[:-1])
        return path, f"unknown key{_did_you_mean(loc[-1], fields)}; valid keys here: {', '.join(fields)}"
    if err["type"] == "value_error":  # our own validators: the message says it all
        return path, str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return path, f"{err['msg']}, got {shown}"


def _non_text_keys(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Keys YAML read as something other than text (``on:`` is YAML 1.1's true)."""
    problems = []
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, str):
                problems.append((f"{path}.{key}" if path else str(key),
                                 f"keys must be text, got {type(key).__name__} {key!r}; YAML reads on/off/yes/no as "
                                 f"true/false and digits as numbers: quote the key"))
            else:
                problems += _non_text_keys(child, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            problems += _non_text_keys(child, f"{path}[{i}]")
    return problems


def _fields_at(loc: Sequence[Any]) -> list[str]:
    model: Any = ExperimentSpec
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _did_you_mean(word: Any, known: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown(value: Any, known: Sequence[str]) -> str:
    return f"unknown name {value!r}{_did_you_mean(value, known)}; valid: {', '.join(known)}"


def _user_path(text: str) -> Path:
    """``~`` expanded where it can be (``~nosuchuser`` stays as written, and does not exist)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        return Path(text)


def _check_names(spec: ExperimentSpec) -> list[tuple[str, str]]:
    problems = []
    if not NAME_PATTERN.match(spec.name):
        problems.append(("name", f"must be a plain directory name (letters, digits, '.', '_', '-'; at most 100, "
                                 f"not starting with '.' or '-'), got {spec.name!r}"))
    if spec.task not in TASKS:  # everything else depends on the task: report only this
        return problems + [("task", _unknown(spec.task, TASKS))]
    try:
        check_data(DataConfig(dataset=spec.data.dataset, task=spec.task))
    except ValueError as exc:
        problems.append(("data.dataset", str(exc)))
    if "://" in spec.tune.storage and not re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", spec.tune.storage):
        problems.append(("tune.storage", f"must be a directory or a URI such as s3://bucket/path, got "
                                         f"{spec.tune.storage!r}"))
    if spec.data.dataset == "folder":
        if not spec.data.train_dir:
            problems.append(("data.train_dir", "the folder dataset needs train_dir (class sub-folders, or images/ and "
                                               "masks/ for segmentation)"))
        for key in ("train_dir", "val_dir"):
            folder = getattr(spec.data, key)
            if folder and not _user_path(folder).is_dir():
                problems.append((f"data.{key}", f"no such directory: {folder}"))
    names = {
        "train.optimizer": (spec.train.optimizer, list(OPTIMIZERS)),
        "tune.search_alg": (spec.tune.search_alg, list(SEARCH_ALGS)),
        "tune.scheduler": (spec.tune.scheduler, list(TRIAL_SCHEDULERS)),
    }
    for path, (value, known) in names.items():
        if value not in known:
            problems.append((path, _unknown(value, known)))
    if spec.task in METRICS and spec.train.metric not in METRICS[spec.task]:
        problems.append(("train.metric", f"{_unknown(spec.train.metric, list(METRICS[spec.task]))} "
                                         f"(the metrics a {spec.task} trial reports)"))
    try:
        check_model_name(spec.model.name, task=spec.task, encoder=spec.model.encoder)
    except ValueError as exc:
        problems.append(("model.encoder" if "encoder" in str(exc) and spec.model.encoder else "model.name", str(exc)))
    pretrained = spec.model.pretrained
    if isinstance(pretrained, str) and not _user_path(pretrained).is_file():
        problems.append(("model.pretrained", f"no weights file at {pretrained!r} (give a .safetensors or .pth file, "
                                             f"true for the library's cache, or false)"))
    scale = spec.data.scale
    if scale is not None and not 0 < scale[0] <= scale[1] <= 1:
        problems.append(("data.scale", f"must be [low, high] with 0 < low <= high <= 1, got {scale}"))
    if spec.train.device not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", spec.train.device):
        problems.append(("train.device", f"must be auto, cpu, cuda or cuda:N, got {spec.train.device!r}"))
    gpu = spec.tune.resources.gpu
    if gpu != "auto" and gpu < 0:
        problems.append(("tune.resources.gpu", f"must be >= 0 or auto, got {gpu}"))
    elif gpu != "auto" and gpu > 1 and gpu != int(gpu):
        problems.append(("tune.resources.gpu", f"a fraction of a GPU must be <= 1 (several trials share one card); "
                                               f"above 1 it must be a whole number, got {gpu}"))
    if spec.tune.dashboard and spec.tune.address:
        problems.append(("tune.dashboard", "an existing cluster serves its own dashboard (see `ray status` on its "
                                           "head node); drop dashboard or address"))
    for key, registry in (("search_alg", SEARCH_ALGS), ("scheduler", TRIAL_SCHEDULERS)):
        info = registry.get(getattr(spec.tune, key))
        options = getattr(spec.tune, f"{key}_options")
        for option, value in options.items() if info else ():
            if option not in info.params:
                known = ", ".join(info.params) or "none"
                problems.append((f"tune.{key}", f"{getattr(spec.tune, key)!r} has no option {option!r}"
                                                f"{_did_you_mean(option, info.params)}; its options: {known}"))
                continue
            try:
                options[option] = info.params[option].check(value)
            except ValueError as exc:
                problems.append((f"tune.{key}.{option}", str(exc)))
    return problems


def _check_search(spec: ExperimentSpec) -> list[tuple[str, str]]:
    problems = []
    for knob, home in KNOB_HOMES.items():
        section, field = home.split(".")
        if knob in spec.search and field in getattr(spec, section).model_fields_set:
            problems.append((f"search.{knob}", f"is also set at {home}; set it in one place"))
    for path, value in _fixed_and_chosen(spec.space, "loss"):
        info = LOSSES.get(value)
        if info is not None and spec.task not in info.tasks:
            problems.append((path, f"loss {value!r} does not apply to task {spec.task!r}; it supports "
                                   f"{', '.join(info.tasks)}"))
    depths = [d for _, d in _fixed_and_chosen(spec.space, "freeze_depth") if d != "all"]
    if depths:
        try:
            stages = stage_count_for(spec.model.name, task=spec.task, encoder=spec.model.encoder)
            check_freeze_depth(max(depths), stages, spec.model.name)
        except ValueError as exc:
            if "freeze_depth" in str(exc):  # a bad model name is reported at model.name already
                problems.append(("search.freeze_depth", str(exc)))
    if spec.train.metric == "val_loss" and spec.space.is_searched("loss"):
        problems.append(("train.metric", "val_loss cannot rank trials that use different losses (their values are "
                                         "not comparable); optimize val_acc or val_f1 instead"))
    if spec.tune.search_alg == "grid":
        try:
            size = spec.space.grid_size()
        except SpaceError as exc:
            problems.append((exc.path, exc.message))
        else:
            if size > MAX_GRID:
                problems.append(("search", f"the grid has {size} points, more than {MAX_GRID}; narrow it or use "
                                           f"search_alg random or optuna"))
    metrics = METRICS.get(spec.task, {})
    for path, monitor in _option_values(spec.space, "scheduler", "plateau", "monitor"):
        if monitor not in metrics:
            problems.append((path, f"plateau cannot watch {monitor!r}: a {spec.task} trial reports "
                                   f"{', '.join(metrics)}"))
    return problems + _check_strategy(spec)


def _fixed_and_chosen(space: SearchSpace, knob: str) -> list[tuple[str, Any]]:
    """Every value a knob can take: fixed values, choices, range ends, family names (with their path)."""
    node = space.root.get(knob)
    path = f"search.{knob}"
    if node is None:
        return []
    if isinstance(node, Fixed):
        return [(path, node.value)]
    if isinstance(node, Categorical):
        return [(path, v) for v in node.values]
    if isinstance(node, IntRange):
        return [(path, node.low), (path, node.high)]
    if isinstance(node, Conditional):
        return [(path, option.name) for option in node.options]
    return []


def _option_values(space: SearchSpace, knob: str, option: str, param: str) -> list[tuple[str, Any]]:
    """Values parameter ``param`` of family option ``option`` (e.g. plateau's monitor) can take."""
    node = space.root.get(knob)
    found = []
    for i, opt in enumerate(node.options if isinstance(node, Conditional) else ()):
        child = dict(opt.params).get(param) if opt.name == option else None
        where = f"search.{knob}" + (f".choice[{i}]" if len(node.options) > 1 else "") + f".{param}"
        if isinstance(child, Fixed):
            found.append((where, child.value))
        elif isinstance(child, Categorical):
            found += [(where, v) for v in child.values]
    return found


def _check_strategy(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """Combinations of search algorithm, trial scheduler and checkpointing that cannot work."""
    tune = spec.tune
    problems = []
    try:
        points = spec.points_to_evaluate()
    except SpaceError as exc:
        problems.append((exc.path, exc.message))
        points = []
    if points and tune.search_alg == "grid":
        problems.append(("tune.points_to_evaluate", "grid search runs every point anyway; remove the points"))
    elif len(points) > tune.num_samples:
        problems.append(("tune.points_to_evaluate", f"has {len(points)} points but num_samples is "
                                                    f"{tune.num_samples}; raise num_samples"))
    if tune.search_alg in CONTINUOUS_ONLY and not any(
            info["type"] != "categorical" for info in spec.space.describe().values()):
        problems.append(("tune.search_alg", f"{tune.search_alg} models continuous parameters and this search has "
                                            f"none; use optuna (TPE), random or grid"))
    if tune.scheduler == "pbt":
        if tune.search_alg != "random":
            problems.append(("tune.search_alg", f"pbt draws its initial population at random and then evolves it "
                                                f"itself; set search_alg: random (got {tune.search_alg})"))
        if not pbt_mutations(spec):
            problems.append(("tune.scheduler", "pbt mutates continuous parameters that every trial has (lr, "
                                               "weight_decay, ...); this search has none"))
    if tune.scheduler == "hyperband" and tune.max_concurrent:
        problems.append(("tune.max_concurrent", "hyperband pauses trials at each rung until its whole bracket gets "
                                                "there, so it needs every trial created up front; remove "
                                                "max_concurrent (tune.resources still limit what runs at once)"))
    if tune.scheduler in ("pbt", "hyperband") and tune.checkpoint_every == 0:
        problems.append(("tune.checkpoint_every", f"{tune.scheduler} pauses and restores trials from checkpoints; "
                                                  f"it must be >= 1"))
    interval = tune.scheduler_options.get("perturbation_interval")
    if tune.scheduler == "pbt" and interval and tune.checkpoint_every and interval % tune.checkpoint_every:
        problems.append(("tune.checkpoint_every", f"must divide pbt's perturbation_interval ({interval}) so a "
                                                  f"checkpoint exists at every perturbation"))
    return problems
