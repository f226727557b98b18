"""What the benchmark scripts share: machine info, result files, tables, the hand-written loop.

Not a test and not part of the package: each script in this folder imports it as a
sibling module (``python benchmarks/<script>.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"

# Every Ray instance a benchmark starts stays on loopback; set before Ray is imported.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
if str(ROOT) not in sys.path:  # run from anywhere without installing: the checkout's tune_app
    sys.path.insert(0, str(ROOT))


# ------------------------------------------------------------------ machine
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """CPU model, cores, memory, GPU (if used), library versions, date: the header of every result file."""
    import torch

    info: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        info["load_avg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    for name in ("timm", "ray", "optuna"):
        try:
            info[name] = __import__(name).__version__
        except Exception:  # not installed where this runs (e.g. the engine script alone)
            info[name] = None
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    info.update(git_state())
    return info


def git_state() -> dict[str, Any]:
    """The commit measured, and the package files changed since it (numbers then describe the working tree)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10).stdout

    try:
        return {"git_commit": git("rev-parse", "--short", "HEAD").strip() or None,
                "tune_app_uncommitted": [line[3:] for line in git("status", "--porcelain", "--", "tune_app").splitlines()]}
    except Exception:
        return {"git_commit": None, "tune_app_uncommitted": None}


def write_json(name: str, payload: dict[str, Any], out: str | Path | None = None) -> Path:
    """Write ``payload`` to ``out``, else ``benchmarks/results/<name>.json`` (``--quick`` runs: ``results/quick/``,
    which git ignores)."""
    quick = bool(payload.get("quick"))
    path = Path(out) if out else (RESULTS / "quick" if quick else RESULTS) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


# ---------------------------------------------------------------- statistics
def median(values: Iterable[float]) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else math.nan


def median_or_inf(values: Sequence[float]) -> float:
    """The median of counts where inf means "never got there": inf when the middle value is inf."""
    ordered = sorted(values)
    return median(ordered) if ordered and ordered[len(ordered) // 2] < math.inf else math.inf


def spread(values: Sequence[float]) -> str:
    """``min..max`` of the repeats, for the tables."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    return f"{min(values):.3g}..{max(values):.3g}" if values else "-"


def table(rows: list[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A Markdown table (also readable as plain text)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())

    def cell(value: Any) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return "-"
            return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


class Stopwatch:
    """``with Stopwatch(sync) as sw: ...``; then ``sw.seconds`` (wall) and ``sw.cpu_seconds`` (this process's CPU).

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before each reading. On a shared
    machine, CPU time of a single-threaded run is what other jobs disturb least: it
    does not count the time the process waited for a core.
    """

    def __init__(self, sync: Any = None) -> None:
        self.sync = sync
        self.seconds = self.cpu_seconds = math.nan

    def __enter__(self) -> Stopwatch:
        if self.sync:
            self.sync()
        self.start, self.cpu_start = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.sync:
            self.sync()
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = time.process_time() - self.cpu_start


# ------------------------------------------------------ the hand-written loop
class HandLoop:
    """A plain timm training loop, the one a user writes by hand; the baseline tune-app is held against.

    Same ingredients as tune-app's ``TrainingRun`` for a plain classification trial:
    ``timm.create_model`` (fresh head, 3 input channels), ``create_optimizer_v2`` (AdamW,
    no decay on biases and norms), cross entropy, the same DataLoader settings
    (shuffle with a seeded generator, ``drop_last``, ``pin_memory`` on CUDA), autocast
    for bf16/fp16 with a GradScaler for fp16 on CUDA, channels_last when asked.
    """

    def __init__(self, model: str, data: Any, *, batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.0,
                 amp: str = "off", device: str = "cpu", channels_last: bool = False, num_workers: int = 0,
                 seed: int = 0) -> None:
        import timm
        import torch
        from timm.optim import create_optimizer_v2
        from torch.utils.data import DataLoader

        torch.manual_seed(seed)
        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        self.train_loader = DataLoader(data.train, batch_size=batch_size, shuffle=True,
                                       drop_last=len(data.train) > batch_size,
                                       generator=torch.Generator().manual_seed(seed), num_workers=num_workers,
                                       pin_memory=cuda, persistent_workers=num_workers > 0)
        self.val_loader = DataLoader(data.val, batch_size=batch_size, num_workers=num_workers, pin_memory=cuda,
                                     persistent_workers=num_workers > 0)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        arch = model.split("/", 1)[1] if model.startswith("timm/") else model
        self.model = timm.create_model(arch, num_classes=data.num_classes, in_chans=data.in_chans)
        self.model.to(self.device, memory_format=self.memory_format)
        self.optimizer = create_optimizer_v2(self.model, opt="adamw", lr=lr, weight_decay=weight_decay)
        if amp == "fp16" and not cuda:
            amp = "bf16"  # as tune-app does: fp16 autocast needs CUDA
        self.dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype is torch.float16 and cuda)

    def autocast(self) -> Any:
        import contextlib

        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def train_one_epoch(self, max_steps: int | None = None) -> dict[str, float]:
        import torch.nn.functional as F

        model, device = self.model, self.device
        model.train()
        seen, loss = 0, None
        for step, (images, targets) in enumerate(self.train_loader):
            if step == max_steps:
                break
            images = images.to(device, non_blocking=True, memory_format=self.memory_format)
            targets = targets.to(device, non_blocking=True)
            with self.autocast():
                loss = F.cross_entropy(model(images), targets)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            seen += len(targets)
        return {"train_loss": loss.item() if loss is not None else math.nan, "images": seen}  # .item(): sync

    def evaluate(self) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        model, device = self.model, self.device
        model.eval()
        correct = total = 0
        loss_sum = 0.0
        with torch.inference_mode():
            for images, targets in self.val_loader:
                images = images.to(device, non_blocking=True, memory_format=self.memory_format)
                targets = targets.to(device, non_blocking=True)
                with self.autocast():
                    logits = model(images)
                loss_sum += F.cross_entropy(logits.float(), targets, reduction="sum").item()
                correct += (logits.argmax(1) == targets).sum().item()
                total += len(targets)
        return {"val_loss": loss_sum / max(total, 1), "val_acc": correct / max(total, 1)}


def cuda_sync(device: str) -> Any:
    """A function that waits for the GPU (None on the CPU), for timing."""
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.synchronize
