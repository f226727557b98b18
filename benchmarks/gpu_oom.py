"""Out of GPU memory for real: a batch too big for the card, retried in micro-batches (same training).

A ``TrainingRun`` of ``--model`` at ``--size`` px with ``--batch-size`` images a step
(synthetic in-memory images: no download, no scikit-learn) trains ``--steps`` steps:

- with ``oom_retry`` off, it must raise ``torch.OutOfMemoryError`` (the batch really does not fit);
- with it on, it must go on: the micro-batch it settled on, the accumulation, the optimizer
  steps taken (one per batch, as without micro-batches), peak memory and images/s.

Written for ``gpu_check.sh`` (step 4); ``--quick`` is a CPU smoke run in which the fault
injection (``TUNE_APP_INJECT_FAULT``, above 8 images) stands in for the card's limit.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import _common as C


def synthetic(count: int, size: int):
    import numpy as np

    from tune_app.training.datasets import ArrayDataset, BatchTransform, DataBundle, stored_side

    side = stored_side(size, 0.875)
    pixels = np.random.default_rng(0).integers(0, 256, (count, side, side, 3), dtype=np.uint8)
    transform = BatchTransform(size, mean=[0.5] * 3, std=[0.25] * 3)
    return DataBundle(train=ArrayDataset(pixels, np.arange(count) % 10, transform),
                      val=ArrayDataset(pixels[:64], np.arange(64) % 10, transform),
                      num_classes=10, in_chans=3, class_names=tuple("abcdefghij"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", default="timm/resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--amp", default="off")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--min-batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a CPU smoke run: tiny model, injected fault")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.quick:
        args.device, args.model, args.size, args.batch_size, args.min_batch = "cpu", "timm/test_resnet", 32, 32, 8
        os.environ["TUNE_APP_INJECT_FAULT"] = json.dumps({"fault": "oom", "above_batch": 8})
    import torch

    from tune_app.training import DataConfig, TrainConfig, TrainingRun

    data = synthetic(args.batch_size * (args.steps + 1), args.size)
    sync = C.cuda_sync(args.device) or (lambda: None)

    def run(retry: bool) -> TrainingRun:
        config = TrainConfig(model=args.model, data=DataConfig(image_size=args.size), batch_size=args.batch_size,
                             epochs=1, lr=1e-3, amp=args.amp, device=args.device, scheduler={"name": "cosine"},
                             precise_bn="off", oom_retry=retry, oom_min_batch=args.min_batch)
        return TrainingRun(config, data=data)

    without = run(retry=False)
    try:
        without.train_one_epoch(max_steps=1)
        fits = True
    except torch.OutOfMemoryError:
        fits = False
    del without
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    retried = run(retry=True)
    steps: list[float] = []
    retried.optimizer.register_step_post_hook(lambda optimizer, *_: steps.append(optimizer.param_groups[0]["lr"]))
    sync()
    start = time.perf_counter()
    metrics = retried.train_one_epoch(max_steps=args.steps)
    sync()
    seconds = time.perf_counter() - start
    row = {"model": args.model, "size": args.size, "amp": args.amp, "batch_size": args.batch_size,
           "fits without micro-batches": fits, "micro_batch": retried.micro_batch,
           "accumulation": -(-args.batch_size // retried.micro_batch), "optimizer steps": len(steps),
           "steps asked": args.steps, "train_loss": metrics["train_loss"],
           "peak_memory_mb": round(_peak_mb(args.device)), "images/s (first steps, retries included)":
           args.steps * args.batch_size / seconds}
    print(C.table([row]))
    C.write_json("gpu_oom", {"machine": C.machine_info(args.device), "git": C.git_state(), "quick": args.quick,
                             "result": row, "lrs": steps}, args.out)
    ok = not fits and retried.micro_batch < args.batch_size and len(steps) == args.steps
    if not ok:
        raise SystemExit(f"FAILED: expected an OOM at batch {args.batch_size} without retry and {args.steps} steps "
                         f"with it; got {row}")


def _peak_mb(device: str) -> float:
    import torch

    from tune_app.training.engine import peak_memory_mb

    return peak_memory_mb(torch.device(device))


if __name__ == "__main__":
    main()
