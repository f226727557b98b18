"""The shared training function: one trial, plain PyTorch, no Ray.

:class:`TrainingRun` builds data loaders, model, loss, optimizer, LR schedule and
mixed precision from a :class:`TrainConfig`, then trains one epoch at a time. The
Ray adapter and ``tune-app train`` drive the same object:

    run = TrainingRun(config)
    for metrics in run.epochs():     # one dict per epoch
        print(metrics["val_acc"])

Its :meth:`state_dict` holds everything needed to continue bit-for-bit on CPU.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
import warnings
from typing import Any, Callable, ContextManager, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from .config import TrainConfig
from .data import DataBundle, DataConfig, build_data
from .losses import create_loss
from .models import count_parameters, create_model
from .optimizers import create_optimizer
from .schedulers import Budget, create_scheduler, current_lr


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite; more epochs cannot help."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


class TrainingRun:
    """One trial's training state; :meth:`epochs` trains until the budget is spent.

    Args:
        config: The trial's complete configuration.
        data: Prebuilt datasets (a sweep shares one copy); built from ``config`` if None.
    """

    def __init__(self, config: TrainConfig, data: DataBundle | None = None) -> None:
        self.config = config
        seed_everything(config.seed)
        self.device = resolve_device(config.device)
        if data is None:
            data = build_data(DataConfig(dataset=config.dataset, image_size=config.image_size))
        self.data = data

        # data: a seeded generator makes the shuffling order part of the checkpoint
        self.generator = torch.Generator().manual_seed(config.seed)
        pin = self.device.type == "cuda"
        self.train_loader = DataLoader(
            data.train,
            batch_size=config.batch_size,
            shuffle=True,
            drop_last=len(data.train) > config.batch_size,  # a 1-image batch breaks BatchNorm
            generator=self.generator,
            num_workers=config.num_workers,
            pin_memory=pin,
        )
        self.val_loader = DataLoader(data.val, batch_size=config.batch_size, num_workers=config.num_workers, pin_memory=pin)

        # model, loss, optimizer, schedule
        self.model = create_model(config.model, data.num_classes, data.in_chans, config.pretrained).to(self.device)
        self.criterion = create_loss(config.loss, task=config.task, num_classes=data.num_classes)
        self.optimizer = create_optimizer(config.optimizer, self.model, config.lr, config.weight_decay, config.momentum)
        self.schedule = create_scheduler(config.scheduler, self.optimizer, Budget(config.epochs, len(self.train_loader)))

        # precision: autocast is either a real context or a no-op, so the loop has no branches
        dtype = resolve_amp(config.amp, self.device)
        self.autocast: Callable[[], ContextManager[Any]] = (
            contextlib.nullcontext if dtype is None else lambda: torch.autocast(self.device.type, dtype=dtype)
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=dtype is torch.float16)
        self.epoch = 0  # epochs completed

    # ------------------------------------------------------------------ loop
    def epochs(self) -> Iterator[dict[str, float]]:
        """Train the remaining epochs, yielding each epoch's metrics."""
        while self.epoch < self.config.epochs:
            yield self.run_epoch()

    def run_epoch(self) -> dict[str, float]:
        lr = current_lr(self.optimizer)
        train = self.train_one_epoch()
        val = self.evaluate()
        self.schedule.after_epoch({**train, **val})
        self.epoch += 1
        return {"epoch": self.epoch, **train, **val, "lr": lr,
                "trainable_params": count_parameters(self.model, trainable_only=True)}

    def train_one_epoch(self, max_steps: int | None = None) -> dict[str, float]:
        """Train on the training set once (or for ``max_steps`` batches, for smoke tests)."""
        model, device = self.model, self.device
        model.train()
        loss_sum = torch.zeros((), device=device)
        seen = 0
        start = time.perf_counter()
        for step, (images, targets) in enumerate(self.train_loader):
            if step == max_steps:
                break
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            with self.autocast():
                loss = self.criterion(model(images), targets)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.schedule.after_step()
            loss_sum += loss.detach() * len(targets)  # stays on the device: no sync per step
            seen += len(targets)
        train_loss = (loss_sum / max(seen, 1)).item()
        elapsed = time.perf_counter() - start
        if not math.isfinite(train_loss):
            raise DivergedError(f"training loss is {train_loss} in epoch {self.epoch + 1} (lr={current_lr(self.optimizer):.3g})")
        return {"train_loss": train_loss, "train_throughput": seen / elapsed}

    @torch.inference_mode()
    def evaluate(self, max_steps: int | None = None) -> dict[str, float]:
        """Loss and metrics on the validation set (or its first ``max_steps`` batches)."""
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        num_classes = self.data.num_classes
        accuracy = MulticlassAccuracy(num_classes, average="micro").to(self.device)
        f1 = MulticlassF1Score(num_classes, average="macro").to(self.device)
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        seen = 0
        for step, (images, targets) in enumerate(self.val_loader):
            if step == max_steps:
                break
            images = images.to(self.device, non_blocking=True)
            targets = targets.to(self.device, non_blocking=True)
            with self.autocast():
                logits = self.model(images)
                loss = self.criterion(logits, targets)
            loss_sum += loss.float() * len(targets)
            seen += len(targets)
            preds = logits.argmax(dim=1)
            accuracy.update(preds, targets)
            f1.update(preds, targets)
        return {
            "val_loss": (loss_sum / max(seen, 1)).item(),
            "val_acc": accuracy.compute().item(),
            "val_f1": f1.compute().item(),
        }

    # ------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run; loadable with ``weights_only=True``."""
        np_state = np.random.get_state()
        return {
            "epoch": self.epoch,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": {
                "python": random.getstate(),
                "numpy": (np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]),
                "torch": torch.get_rng_state(),
                "loader": self.generator.get_state(),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the next epoch is ``state["epoch"] + 1``."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        random.setstate(rng["python"])
        name, keys, *rest = rng["numpy"]
        np.random.set_state((name, keys.numpy(), *rest))
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["loader"])
        self.epoch = int(state["epoch"])
