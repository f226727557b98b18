"""The shared training function: one trial, plain PyTorch, no Ray.

:class:`TrainingRun` builds data loaders, model (frozen as asked), loss, optimizer,
LR schedule and mixed precision from a :class:`TrainConfig`, then trains one epoch
at a time. The Ray adapter and ``tune-app train`` drive the same object:

    run = TrainingRun(config)
    for metrics in run.epochs():     # one dict per epoch
        print(metrics["val_loss"])

Its :meth:`state_dict` holds everything needed to continue: resumed from epoch k, a
CPU run ends with the same metrics as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import random
import resource
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from .augment_policies import augment_problem, create_policy
from .config import TrainConfig
from .datasets import DEFAULT_CROP_PCT, INTERPOLATIONS, DataBundle, DataConfig, build_data
from .ema import WeightAverage, raw_metrics
from .faults import injected_oom
from .freeze import Frozen, freeze, unfreeze
from .loading import SplitLoader
from .losses import create_loss
from .lr_schedules import ScheduleLength, create_lr_schedule, current_lr
from .meta import build_light
from .metrics import create_metrics
from .microbatch import accumulation, smaller_micro_batch, split
from .mixing import BatchMixing, mixing_problem
from .model_facts import remembered
from .models import count_parameters, create_model
from .optimizers import create_optimizer
from .param_groups import parameter_groups, uses_groups
from .precise_bn import AUTO_IMAGES, needs_recompute, recompute, training_batch_norms
from .weights import exported_normalization


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite; more epochs cannot help."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(on: bool) -> None:
    """The chapter's ``set_seed`` switches, plus torch's deterministic algorithms; or all back to fast.

    Set both ways: a reused Ray worker may run a deterministic trial after a fast one. Ops
    without a deterministic implementation warn instead of failing (``warn_only``).
    """
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS is deterministic only with it
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on and torch.cuda.is_available()  # fixed input sizes: fastest kernels
    torch.use_deterministic_algorithms(on, warn_only=True)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``; None means full precision."""
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "fp16" and device.type != "cuda":
        warnings.warn("amp: fp16 needs a CUDA device; using bf16 on the CPU instead", stacklevel=2)
        return torch.bfloat16
    return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


COMPLETED_FIELDS = ("mean", "std", "crop_pct", "interpolation")  # what data_config may fill in
TRIAL_FIELDS = ("hflip", "scale")  # training augmentation a trial may search: its own batch transform applies it


def data_config(config: TrainConfig) -> DataConfig:
    """The data part of a trial's config, completed from the model's pretrained config.

    Pretrained weights bring their own input normalization (an exported model's
    ``config.json``, else timm's pretrained config); folder images are framed with the
    model's ``crop_pct`` (else 0.875) and resized with its interpolation, unless the data
    section sets them.
    """
    data = config.data
    changes: dict[str, Any] = {}
    cfg = model_pretrained_cfg(config.model, config.encoder)
    if config.pretrained and data.mean is None:
        exported = exported_normalization(config.pretrained)
        if exported is not None:
            changes.update(mean=exported[0], std=exported[1])
        elif cfg is not None:
            changes.update(mean=tuple(cfg.mean), std=tuple(cfg.std))
    if data.crop_pct is None:
        changes["crop_pct"] = float(cfg.crop_pct) if cfg is not None and cfg.crop_pct else DEFAULT_CROP_PCT
    if data.interpolation is None and cfg is not None and cfg.interpolation in INTERPOLATIONS:
        changes["interpolation"] = cfg.interpolation
    return dataclasses.replace(data, **changes) if changes else data


def build_data_for(config: TrainConfig) -> DataBundle:
    """A trial's datasets: its data config completed for its model (:func:`data_config`), then built.

    The bundle keeps the completed config (``bundle.config``): :class:`TrainingRun`
    records it in its checkpoints, the export in ``config.json``.

    Example:
        >>> bundle = build_data_for(TrainConfig(model="timm/test_resnet", data=DataConfig(image_size=16)))
        >>> bundle.config.crop_pct, bundle.config.interpolation  # test_resnet's pretrained config
        (0.95, 'bilinear')
    """
    return build_data(data_config(config))


def with_built_data(config: TrainConfig, data: DataBundle) -> TrainConfig:
    """``config`` with the data config ``data`` was built from, if that is ``config.data`` completed.

    Only the fields :func:`data_config` fills may differ, and only where ``config.data``
    leaves them unset, besides the training augmentation a trial searches (``TRIAL_FIELDS``,
    which stay the trial's: see :func:`trial_split`). Data built for something else (another dataset or size, or a
    bundle made by hand, which has no config) leaves ``config`` as it is.
    """
    built = data.config
    if built is None or built == config.data:
        return config
    unset = {name: getattr(built, name) for name in COMPLETED_FIELDS if getattr(config.data, name) is None}
    shared = {name: getattr(built, name) for name in TRIAL_FIELDS}
    if dataclasses.replace(config.data, **unset, **shared) != built:
        return config
    return dataclasses.replace(config, data=dataclasses.replace(built, **{n: getattr(config.data, n)
                                                                       for n in TRIAL_FIELDS}))


@dataclasses.dataclass(frozen=True)
class PretrainedFraming:
    """What a pretrained config says of the images its weights expect."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pct: float | None
    interpolation: str | None


@remembered("model_pretrained_cfg", encode=lambda cfg: cfg and dataclasses.asdict(cfg),
            decode=lambda fact: fact and PretrainedFraming(**{**fact, "mean": tuple(fact["mean"]),
                                                              "std": tuple(fact["std"])}))
def model_pretrained_cfg(model: str, encoder: str | None = None) -> PretrainedFraming | None:
    """timm's pretrained config of ``model`` (mean, std, crop_pct, interpolation); None if it has none.

    torchvision's weights expect the ImageNet statistics (the folder default) and timm's
    default framing, so they have none here.

    Example:
        >>> model_pretrained_cfg("timm/test_resnet").crop_pct
        0.95
    """
    source, _, arch = model.partition("/")
    arch = encoder if source == "smp" else arch
    if source not in ("timm", "smp") or not arch:
        return None
    import timm

    try:
        cfg = timm.get_pretrained_cfg(arch.removeprefix("tu-"))
    except Exception:  # an architecture without a pretrained config
        return None
    if cfg is None:
        return None
    return PretrainedFraming(tuple(cfg.mean), tuple(cfg.std), cfg.crop_pct, cfg.interpolation)


def trial_split(split: Any, config: TrainConfig) -> Any:
    """The training split as this trial sees it: the shared split itself when the trial augments as it was built
    to, else a shallow copy (the same arrays) whose batch transform takes the trial's ``augment`` policy and its
    searched ``hflip`` and ``scale``."""
    policy = create_policy(config.augment)
    transform = split.transform
    own = {"hflip": config.data.hflip, "scale": config.data.scale}
    if policy is None and (transform.hflip, transform.scale) == (own["hflip"], own["scale"]):
        return split
    trial = copy.copy(split)
    trial.transform = transform.for_trial(policy, **own)
    return trial


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated on CUDA, else the process's peak resident memory."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


class TrainingRun:
    """One trial's training state; :meth:`epochs` trains until the budget is spent.

    Args:
        config: The trial's complete configuration.
        data: Prebuilt datasets (a sweep shares one copy); built from ``config`` if None.
            Built for ``config.data``, their completed data config becomes this run's.
    """

    def __init__(self, config: TrainConfig, data: DataBundle | None = None) -> None:
        seed_everything(config.seed)
        self.device = resolve_device(config.device)
        set_deterministic(config.deterministic)
        cuda = self.device.type == "cuda"
        self.data = data if data is not None else build_data_for(config)
        # Checkpoints record the data as it was built: crop_pct, interpolation and normalization included.
        self.config = config = with_built_data(config, self.data)

        # data: seeded generators make the shuffling order and the augmentation part of the checkpoint
        self.generator = torch.Generator().manual_seed(config.seed)
        self.augment_generator = torch.Generator().manual_seed(config.seed + 1)
        workers = config.data.num_workers
        if problem := augment_problem(config.task, config.augment["name"]):
            raise ValueError(problem)
        self.train_split = trial_split(self.data.train, config)
        self.train_loader = SplitLoader(self.train_split, config.batch_size, shuffle=True,
                                        drop_last=len(self.data.train) > config.batch_size,  # 1 image breaks BatchNorm
                                        generator=self.generator, num_workers=workers, pin_memory=cuda)
        self.val_loader = SplitLoader(self.data.val, config.batch_size, num_workers=workers, pin_memory=cuda)

        # model: fresh head, then freezing
        self.model = create_model(config.model, self.data.num_classes, self.data.in_chans, config.pretrained,
                                  task=config.task, encoder=config.encoder, regularization=config.regularization)
        self.channels_last = cuda if config.channels_last is None else config.channels_last
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model.to(self.device, memory_format=self.memory_format)
        # Layers that thaw later (unfreeze_epoch) are in the optimizer from the start: frozen, they get no
        # gradient, so no optimizer state and no weight decay, and thawed they need no new parameter group
        # (torch's LR schedules keep one lr per group they were built with).
        thaws = bool(config.freeze_depth) and config.unfreeze_epoch is not None
        if thaws:
            self.optimizer = self._create_optimizer()
        self.frozen: Frozen | None = None  # what is frozen now, while it is to thaw
        if config.freeze_depth:
            frozen = freeze(self.model, config.freeze_depth, bn_eval=config.freeze_bn)
            self.frozen = frozen if thaws else None
        if not thaws:
            self.optimizer = self._create_optimizer()
        self.trainable_params = count_parameters(self.model, trainable_only=True)
        self.average = WeightAverage(self.model, config.ema) if config.ema else None
        self.bn_layers = training_batch_norms(self.model)

        # loss, schedule
        self.criterion = create_loss(config.loss, task=config.task, num_classes=self.data.num_classes)
        self.mixing = None
        if config.mixing.on:
            problem = mixing_problem(config.task, config.loss["name"])
            if problem:
                raise ValueError(problem)
            self.mixing = BatchMixing(config.mixing, self.data.num_classes)
        self.schedule = create_lr_schedule(config.scheduler, self.optimizer, ScheduleLength(config.epochs, len(self.train_loader)))

        # precision: autocast is either a real context or a no-op, so the loop has no branches
        dtype = resolve_amp(config.amp, self.device)
        self.autocast: Callable[[], contextlib.AbstractContextManager[Any]] = (
            contextlib.nullcontext if dtype is None else lambda: torch.autocast(self.device.type, dtype=dtype)
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=dtype is torch.float16 and cuda)
        self.epoch = 0  # epochs completed
        # Images per forward pass: the batch, until it runs out of memory (see smaller_micro_batch_after_oom).
        self.micro_batch = config.batch_size
        self.injected_oom = injected_oom(config.to_dict())

    def _create_optimizer(self) -> torch.optim.Optimizer:
        config = self.config
        return create_optimizer(config.optimizer, self.model, config.lr, config.weight_decay, config.momentum,
                                layer_decay=config.layer_decay, head_lr_mult=config.head_lr_mult)

    def thaw(self) -> None:
        """Unfreeze what ``freeze_depth`` froze (``unfreeze_epoch`` has come): every layer trains from here on."""
        assert self.frozen is not None
        unfreeze(self.model, self.frozen, *([self.average.module] if self.average is not None else []))
        self.frozen = None
        self.trainable_params = count_parameters(self.model, trainable_only=True)
        self.bn_layers = training_batch_norms(self.model)

    # ------------------------------------------------------------------ loop
    def epochs(self) -> Iterator[dict[str, float]]:
        """Train the remaining epochs, yielding each epoch's metrics."""
        while self.epoch < self.config.epochs:
            yield self.run_epoch()

    def run_epoch(self) -> dict[str, float]:
        if self.frozen is not None and self.epoch >= self.config.unfreeze_epoch:
            self.thaw()
        lr = current_lr(self.optimizer)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        train = self.train_one_epoch()
        start = time.perf_counter()
        recomputed = self.precise_bn()
        precise_s = time.perf_counter() - start if recomputed else 0.0
        val = self.evaluate()
        self.schedule.after_epoch({**train, **val})
        self.epoch += 1
        return {"epoch": self.epoch, **train, **val, "lr": lr, "trainable_params": self.trainable_params,
                "precise_bn_batches": recomputed, "precise_bn_s": precise_s,
                "peak_memory_mb": peak_memory_mb(self.device), "micro_batch": self.micro_batch,
                "accumulation": accumulation(self.config.batch_size, self.micro_batch)}

    def smaller_micro_batch_after_oom(self) -> bool:
        """After an out-of-memory error: halve the micro-batch (doubling the accumulation) if allowed.

        False when ``oom_retry`` is off or half would go below ``oom_min_batch``: the
        error stands. The batch, and so the training, stays the same (:mod:`.microbatch`).
        """
        smaller = smaller_micro_batch(self.micro_batch, self.config.oom_min_batch) if self.config.oom_retry else None
        if smaller is None:
            return False
        self.micro_batch = smaller
        return True

    def oom_text(self) -> str:
        """What ran out of memory, for the trial's failure reason."""
        config = self.config
        text = f"out of memory at batch_size {config.batch_size} with amp {config.amp}"
        if not config.oom_retry:
            return text + " (tune.oom_retry is off)"
        return text + (f", even in micro-batches of {self.micro_batch} (tune.oom_min_batch is {config.oom_min_batch})"
                       if self.micro_batch < config.batch_size else
                       f" (tune.oom_min_batch {config.oom_min_batch} leaves no smaller micro-batch)")

    def precise_bn(self) -> int:
        """Recompute the training BatchNorm layers' statistics as ``train.precise_bn`` says; batches used.

        Batches come from a shuffle of the training split of their own (seeded by the trial
        and the epoch), so the training order and augmentation stay as they would be without.
        """
        mode = self.config.precise_bn
        if mode in ("off", False) or not self.bn_layers:
            return 0
        if mode == "auto":
            steps = (self.epoch + 1) * len(self.train_loader)  # this epoch's steps included
            if not needs_recompute(self.bn_layers, steps):
                return 0
            count = min(len(self.train_loader), math.ceil(AUTO_IMAGES / self.config.batch_size))
        else:
            count = int(mode)
        seed = self.config.seed * 1_000_003 + self.epoch
        loader = SplitLoader(self.train_split, self.config.batch_size, shuffle=True,
                             drop_last=len(self.data.train) > self.config.batch_size,
                             generator=torch.Generator().manual_seed(seed), num_workers=self.config.data.num_workers,
                             pin_memory=self.device.type == "cuda")
        augment = torch.Generator().manual_seed(seed + 1)

        def images() -> Iterator[torch.Tensor]:
            given = 0
            while given < count:  # more batches than one pass: another pass
                for batch, _ in loader.batches(self.device, self.memory_format, augment, reuse=True):
                    if given == count:
                        return
                    given += 1
                    yield batch

        return recompute(self.model, self.bn_layers, images(), self.autocast)

    def train_one_epoch(self, max_steps: int | None = None) -> dict[str, float]:
        """Train on the training set once (or for ``max_steps`` batches, for smoke tests)."""
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        seen = 0
        start = time.perf_counter()
        batches = self.train_loader.batches(self.device, self.memory_format, self.augment_generator, reuse=True)
        for step, (images, targets) in enumerate(batches):
            if step == max_steps:
                break
            if self.mixing is not None:
                images, targets = self.mixing(images, targets)
            loss_sum += self._train_step(images, targets, first_step=step == 0)  # on the device: no sync per step
            seen += len(targets)
        train_loss = (loss_sum / max(seen, 1)).item()
        elapsed = time.perf_counter() - start
        if not math.isfinite(train_loss):
            raise DivergedError(f"training loss is {train_loss} in epoch {self.epoch + 1} (lr={current_lr(self.optimizer):.3g})")
        return {"train_loss": train_loss, "train_throughput": seen / elapsed}

    def _train_step(self, images: torch.Tensor, targets: torch.Tensor, first_step: bool) -> torch.Tensor:
        """One optimizer step on a batch, in micro-batches; the batch's summed loss. Out of memory: smaller, again."""
        while True:
            try:
                return self._accumulate(images, targets, first_step)
            except torch.OutOfMemoryError:
                if not self.smaller_micro_batch_after_oom():
                    raise
            # Out of the except block, the failed pass's tensors (its traceback held them) are freed.
            self.optimizer.zero_grad(set_to_none=True)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def _accumulate(self, images: torch.Tensor, targets: torch.Tensor, first_step: bool) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), device=self.device)
        for part_images, part_targets, share in split(images, targets, self.micro_batch):
            if self.injected_oom is not None:
                self.injected_oom.check(self.epoch + 1, first_step, len(part_targets))
            with self.autocast():
                loss = self.criterion(self.model(part_images), part_targets)
            # Weighted by its share, each micro-batch's gradient adds up to the whole batch's mean.
            self.scaler.scale(loss * share if share != 1.0 else loss).backward()
            loss_sum += loss.detach() * len(part_targets)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.after_step()
        if self.average is not None:
            self.average.update(self.model)
        return loss_sum

    def evaluate(self, max_steps: int | None = None) -> dict[str, float]:
        """Loss and metrics on the validation set (or its first ``max_steps`` batches): the weights' moving
        average's with ``ema`` on, the raw weights' then as ``val_*_raw``."""
        raw = self._evaluate(self.model, max_steps)
        if self.average is None:
            return raw
        return {**self._evaluate(self.average.module, max_steps), **raw_metrics(raw)}

    @torch.inference_mode()
    def _evaluate(self, model: torch.nn.Module, max_steps: int | None) -> dict[str, float]:
        metrics = create_metrics(self.config.task, self.data.num_classes, self.device)
        model.eval()
        loss_sum = torch.zeros((), device=self.device)
        seen = 0
        for step, (images, targets) in enumerate(self.val_loader.batches(self.device, self.memory_format, reuse=True)):
            if step == max_steps:
                break
            for part_images, part_targets, _ in split(images, targets, self.micro_batch):  # the training's size fits
                with self.autocast():
                    logits = model(part_images)
                    loss = self.criterion(logits, part_targets)
                loss_sum += loss.float() * len(part_targets)
                seen += len(part_targets)
                metrics.update(logits.float(), part_targets)
        return {"val_loss": (loss_sum / max(seen, 1)).item(), **metrics.compute()}

    # ------------------------------------------------------------ checkpoint
    def adopt_hyperparameters(self, previous: dict[str, Any]) -> None:
        """After loading a state made under ``previous`` config: use this config's lr, weight decay, momentum.

        The loaded optimizer state carries the old values. PBT restarts a trial from a
        better trial's checkpoint with perturbed values, which must take effect; the LR
        schedule keeps its shape and is rescaled by new_lr / old_lr.
        """
        config = self.config
        ratio = config.lr / previous["lr"] if previous.get("lr") else 1.0
        # Each group's own lr scale (layer decay, the head's multiple) may have been perturbed too.
        old = [float(g.get("lr_scale", 1.0)) for g in self.optimizer.param_groups]
        scales = self._group_scales() if uses_groups(config.layer_decay, config.head_lr_mult) else old
        ratios = [ratio * new / before for new, before in zip(scales, old, strict=True)]
        for group, group_ratio, scale in zip(self.optimizer.param_groups, ratios, scales, strict=True):
            for key in ("lr", "initial_lr", "max_lr", "min_lr"):
                if key in group:
                    group[key] *= group_ratio
            if "lr_scale" in group:
                group["lr_scale"] = scale
            if group.get("weight_decay"):  # groups without decay (biases, norms) keep none
                group["weight_decay"] = config.weight_decay
            if "momentum" in group:
                group["momentum"] = config.momentum
        if any(r != 1.0 for r in ratios):
            self.schedule.scale_lr(ratios)
        if self.average is not None:
            self.average.decay = config.ema

    def _group_scales(self) -> list[float]:
        """Each optimizer group's lr scale under this config, grouped as the optimizer's groups were built:
        over the whole model while layers wait to thaw (see ``__init__``), else over the trainable ones."""
        config = self.config
        model = self.model
        if self.frozen is not None:  # the same architecture, whole: its structure is all that counts
            model = build_light(lambda: create_model(config.model, self.data.num_classes, self.data.in_chans,
                                                     task=config.task, encoder=config.encoder,
                                                     regularization=config.regularization))
        return [g["lr_scale"] for g in parameter_groups(model, config.lr, config.weight_decay,
                                                        layer_decay=config.layer_decay,
                                                        head_lr_mult=config.head_lr_mult)]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run; loadable with ``weights_only=True``."""
        np_state = np.random.get_state()
        return {
            "epoch": self.epoch,
            "micro_batch": self.micro_batch,  # a trial that ran out of memory continues at the size that fits
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.average.state_dict() if self.average is not None else None,
            "thawed": self.config.unfreeze_epoch is not None and self.frozen is None,  # the layers' structure
            "rng": {
                "python": random.getstate(),
                "numpy": (np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "loader": self.generator.get_state(),
                "augment": self.augment_generator.get_state(),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the next epoch is ``state["epoch"] + 1``."""
        if state.get("thawed") and self.frozen is not None:  # saved after unfreeze_epoch: the same layers first
            self.thaw()
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.average is not None:
            if state.get("ema"):
                self.average.load_state_dict(state["ema"])
            else:
                self.average.restart_from(self.model)
        rng = state["rng"]
        random.setstate(rng["python"])
        name, keys, *rest = rng["numpy"]
        np.random.set_state((name, keys.numpy(), *rest))
        torch.set_rng_state(rng["torch"])
        if rng.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.generator.set_state(rng["loader"])
        if "augment" in rng:  # checkpoints written before batch augmentation have none
            self.augment_generator.set_state(rng["augment"])
        self.epoch = int(state["epoch"])
        self.micro_batch = min(int(state.get("micro_batch", self.micro_batch)), self.config.batch_size)
