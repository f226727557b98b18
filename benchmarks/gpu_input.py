"""Is the input pipeline as fast as the GPU? A model trained from the photo cache vs from memory.

``TrainingRun.train_one_epoch`` images/s, interleaved repeats, for one model and batch:

- ``synthetic``: random uint8 squares held in memory, through the same batch pipeline
  (the GPU's own speed with an input that costs nothing to read);
- ``cache``: a folder of real photos read through the decoded-once image cache;
- ``off``: the same folder read per item (``data.cache: off``) with ``--num-workers``
  DataLoader processes.

Target: cache / synthetic >= 0.9 (benchmarks/README.md). Written for a GPU
(``gpu_check.sh`` runs it: resnet50 at 224 px, bf16); ``--quick`` checks it on the CPU.

    python benchmarks/gpu_input.py --device cuda --model timm/resnet50 --size 224 --amp bf16
    python benchmarks/gpu_input.py --quick
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C


def bundles(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from tune_app.training.datasets import (
        ArrayDataset,
        BatchTransform,
        DataBundle,
        DataConfig,
        build_data,
        stored_side,
        write_sample_photos,
    )

    root = args.work / f"photos-{args.photos}"
    if not (root / "train").is_dir():
        print(f"writing {args.photos} photos to {root}", flush=True)
        write_sample_photos(root, count=args.photos)
    folder = dict(dataset="folder", train_dir=str(root / "train"), val_dir=str(root / "val"), image_size=args.size,
                  hflip=True, scale=(0.35, 1.0), crop_pct=0.875, cache_dir=str(args.work / "cache"))
    cache = build_data(DataConfig(**folder))
    off = build_data(DataConfig(**folder, cache="off", num_workers=args.num_workers))
    side = stored_side(args.size, 0.875)
    pixels = np.random.default_rng(0).integers(0, 256, (512, side, side, 3), dtype=np.uint8)
    transform = cache.train.transform
    synthetic = DataBundle(train=ArrayDataset(pixels, np.arange(512) % 2, transform),
                           val=ArrayDataset(pixels[:64], np.arange(64) % 2,
                                            BatchTransform(args.size, mean=transform.mean.tolist(),
                                                           std=transform.std.tolist())),
                           num_classes=2, in_chans=3, class_names=("a", "b"))
    return {"synthetic": (synthetic, 0), "cache": (cache, 0), "off": (off, args.num_workers)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="timm/resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--amp", default="bf16")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-workers", type=int, default=8)
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tune-app-gpu-input")
    parser.add_argument("--quick", action="store_true", help="a CPU smoke run: tiny model, few steps")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.quick:
        args.model, args.size, args.amp, args.batch_size, args.steps, args.repeats = "timm/test_resnet", 64, "off", 32, 3, 1
        args.photos, args.num_workers = 200, 2
    from tune_app.training import DataConfig, TrainConfig, TrainingRun

    sync = C.cuda_sync(args.device) or (lambda: None)
    runs = {}
    for name, (data, workers) in bundles(args).items():
        config = TrainConfig(model=args.model, data=DataConfig(image_size=args.size, num_workers=workers),
                             batch_size=args.batch_size, epochs=100, lr=1e-3, amp=args.amp, device=args.device)
        runs[name] = TrainingRun(config, data=data)
        runs[name].train_one_epoch(max_steps=3)  # warm-up: cuDNN autotuning, page cache, workers
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(args.repeats):
        for name in (list(runs) if repeat % 2 == 0 else list(runs)[::-1]):
            sync()
            start = time.perf_counter()
            runs[name].train_one_epoch(max_steps=args.steps)
            sync()
            rates[name].append(args.steps * args.batch_size / (time.perf_counter() - start))
    base = C.median(rates["synthetic"])
    rows = [{"input": name, "images/s": C.median(v), "repeats": C.spread(v), "vs synthetic": C.median(v) / base}
            for name, v in rates.items()]
    print(C.table(rows), flush=True)
    payload = {"machine": C.machine_info(args.device), "quick": args.quick, "args": vars(args), "rows": rows}
    print(f"wrote {C.write_json('gpu_input', payload, args.out)}")


if __name__ == "__main__":
    main()
