"""The input pipeline on a folder of real photos: decode once into the cache vs per item.

A folder of ``--photos`` JPEGs (random 500x375 crops of scikit-learn's two sample
photographs, two classes) is written once under ``--work``. Then, side by side in one
run:

1. Training input alone (read, augment, collate; no model), images/s on one core
   (one process, one torch thread), at ``image_size`` 224 and 64, interleaved repeats:
   - ``before``: the per-item path tune-app had (PIL decode + timm's training transform
     per item, DataLoader collate, no workers), written out here as it was;
   - ``off``: today's per-item path (``data.cache: off``: decode, frame, batch transform
     of one);
   - ``cache``: the decoded-once cache, augmented on the CPU as a CPU trial does (each
     image's random crop cut from the mapped file, resized, flipped, normalized);
   - ``cache, GPU trial``: the CPU's share of a GPU trial's input: the raw uint8 squares of
     each batch gathered from the mapped file (the crop, flip and normalization then run
     on the GPU, see benchmarks/gpu_check.sh).
   Target: cache / before >= 20x at 224.
2. Cache build time with all cores, and the memory of 4 trials reading one cache at once:
   each a process that maps it and reads every image; ``Pss`` of the mapping (the page
   cache shared between them, divided) against its size.
3. End to end: ``tune-app train`` at 64 px with ``timm/test_efficientnet``, the photo
   folder against the in-memory ``digits``, same batch and augmentation: the
   ``train_throughput`` of epochs 2+ (the img/s each epoch line prints, the number in
   history.csv). Target: photos / digits >= 0.85x.
4. Large JPEGs: ``--large`` generated 12-20 MP camera-sized JPEGs (the sample photos
   upscaled, with sensor-like noise), framed at 256 px (``image_size`` 224) as the cache
   build does, one process: full decode vs the reduced DCT-scale decode (JPEG draft),
   images/s per core side by side (target >= 3x), and the max / mean absolute pixel
   difference of the stored squares. Then a real cache build of them.

    python benchmarks/input_pipeline.py            # ~10 min on 2 cores
    python benchmarks/input_pipeline.py --quick    # a smoke run
    python benchmarks/input_pipeline.py --parts 4 --large 20   # the large-JPEG part alone
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as C

SIZES = (224, 64)
SCALE = (0.35, 1.0)


# ------------------------------------------------------------------ 1. input only
def before_loader(files: list[tuple[str, int]], size: int, batch: int) -> Any:
    """The per-item path as it was (commit 87a96eb): PIL + timm's training transform in the loop."""
    import torch
    from PIL import Image
    from timm.data import create_transform
    from torch.utils.data import DataLoader, Dataset

    transform = create_transform(input_size=(3, size, size), is_training=True, scale=SCALE, hflip=0.5,
                                 color_jitter=None, interpolation="bilinear")

    class FolderImages(Dataset):
        def __len__(self) -> int:
            return len(files)

        def __getitem__(self, index: int) -> Any:
            path, target = files[index]
            with Image.open(path) as image:
                return transform(image.convert("RGB")), torch.tensor(target)

    return DataLoader(FolderImages(), batch_size=batch, shuffle=True, num_workers=0)


def tune_app_batches(root: Path, size: int, batch: int, cache: str, cache_dir: Path,
                     raw: bool = False) -> Callable[[], Any]:
    """One pass of the training loader as a trial iterates it; ``raw``: the gather a GPU trial's CPU does."""
    import torch

    from tune_app.training.datasets import DataConfig, build_data
    from tune_app.training.loading import SplitLoader

    data = build_data(DataConfig(dataset="folder", train_dir=str(root / "train"), val_dir=str(root / "val"),
                                 image_size=size, hflip=True, scale=SCALE, cache=cache, cache_dir=str(cache_dir)))
    loader = SplitLoader(data.train, batch, shuffle=True, generator=torch.Generator().manual_seed(0))
    augment = torch.Generator().manual_seed(1)
    if raw:
        return lambda: iter(loader.loader)
    return lambda: loader.batches(torch.device("cpu"), augment=augment, reuse=True)


def time_images(batches: Any, limit: int) -> tuple[float, int]:
    """Seconds to draw at least ``limit`` images from an iterable of (images, targets)."""
    start, seen = time.perf_counter(), 0
    for images, _ in batches:
        seen += len(images)
        if seen >= limit:
            break
    return time.perf_counter() - start, seen


def input_only(root: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    from tune_app.training.datasets import DataConfig, scan_folder

    torch.set_num_threads(1)
    files = scan_folder(DataConfig(dataset="folder", train_dir=str(root / "train"), val_dir=str(root / "val")))
    train = list(zip(files.images[:files.n_train], files.labels[:files.n_train]))
    rows = []
    for size in SIZES:
        for warm in ("auto",):  # build this size's cache before timing anything
            tune_app_batches(root, size, args.batch_size, warm, args.work / "cache")
        sides: dict[str, Callable[[], Any]] = {
            "before": lambda: before_loader(train, size, args.batch_size),
            "off": tune_app_batches(root, size, args.batch_size, "off", args.work / "cache"),
            "cache": tune_app_batches(root, size, args.batch_size, "auto", args.work / "cache"),
            "cache, GPU trial": tune_app_batches(root, size, args.batch_size, "auto", args.work / "cache", raw=True),
        }
        limits = {"before": args.per_item_images, "off": args.per_item_images, "cache": args.cache_images,
                  "cache, GPU trial": args.cache_images}
        rates: dict[str, list[float]] = {name: [] for name in sides}
        for repeat in range(args.repeats):
            for name in (list(sides) if repeat % 2 == 0 else list(sides)[::-1]):
                seconds, seen = time_images(sides[name](), limits[name])
                rates[name].append(seen / seconds)
        base = C.median(rates["before"])
        for name, values in rates.items():
            rows.append({"image_size": size, "path": name, "images/s/core": C.median(values),
                         "repeats": C.spread(values), "vs before": C.median(values) / base})
        print(C.table(rows[-len(sides):]), flush=True)
    return rows


# ------------------------------------------------------------------ 2. build and memory
def build_and_memory(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    from tune_app.training.datasets import DataConfig, scan_folder
    from tune_app.training.datasets._folder import folder_cache

    out: dict[str, Any] = {"builds": []}
    for size in SIZES:
        config = DataConfig(dataset="folder", train_dir=str(root / "train"), val_dir=str(root / "val"),
                            image_size=size, crop_pct=0.875, cache_dir=str(args.work / f"build-{size}"))
        cache = folder_cache(config, scan_folder(config))
        start = time.perf_counter()
        cache.ensure(lambda line: print(line, flush=True))
        seconds = time.perf_counter() - start
        out["builds"].append({"image_size": size, "side": cache.side, "images": cache.count, "seconds": seconds,
                              "images/s": cache.count / seconds, "MB": cache.nbytes / 2**20,
                              "cores": len(os.sched_getaffinity(0))})
    print(C.table(out["builds"]), flush=True)
    out["trials"] = four_trials(root, args)
    return out


READER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    from tune_app.training.datasets import DataConfig, build_data
    config = DataConfig(dataset="folder", train_dir=sys.argv[1] + "/train", val_dir=sys.argv[1] + "/val",
                        image_size=224, crop_pct=0.875, cache_dir=sys.argv[2])
    data = build_data(config)
    for start in range(0, len(data.train), 64):  # one epoch of reads
        data.train.read(np.arange(start, min(start + 64, len(data.train))))
    Path(sys.argv[3]).touch()
    while not Path(sys.argv[4]).exists():  # all four hold their mappings while memory is read
        time.sleep(0.05)
    rss = pss = 0
    lines = Path("/proc/self/smaps").read_text().splitlines()
    inside = False
    for line in lines:
        if "-" in line.split(" ", 1)[0] and len(line.split()) >= 5:
            inside = line.rstrip().endswith("images.u8")
        elif inside and line.startswith("Rss:"):
            rss += int(line.split()[1])
        elif inside and line.startswith("Pss:"):
            pss += int(line.split()[1])
    total = [l for l in Path("/proc/self/smaps_rollup").read_text().splitlines() if l.startswith(("Rss:", "Pss:"))]
    print(rss, pss, " ".join(total), flush=True)
""")


def four_trials(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Four processes map the 224 px cache at once; the Pss of their mappings adds up to one copy."""
    cache_dir = args.work / "build-224"
    go = args.work / "go"
    go.unlink(missing_ok=True)
    procs = [subprocess.Popen([sys.executable, "-c", READER, str(root), str(cache_dir), str(args.work / f"ready{i}"),
                               str(go)], stdout=subprocess.PIPE, text=True, cwd=C.ROOT) for i in range(4)]
    deadline = time.monotonic() + 600
    while len(list(args.work.glob("ready*"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    go.touch()
    outputs = [p.communicate(timeout=120)[0].split() for p in procs]
    for ready in args.work.glob("ready*"):
        ready.unlink()
    size_kb = sum(f.stat().st_size for f in cache_dir.glob("*/images.u8")) / 1024
    mapped_rss = [int(o[0]) for o in outputs]
    mapped_pss = [int(o[1]) for o in outputs]
    # the trials read the training rows only: one copy is what one of them holds mapped
    result = {"cache_MB": size_kb / 1024, "per_trial_mapping_rss_MB": [r / 1024 for r in mapped_rss],
              "sum_mapping_pss_MB": sum(mapped_pss) / 1024, "copies_in_memory": sum(mapped_pss) / max(mapped_rss),
              "process_totals": [" ".join(o[2:]) for o in outputs]}
    print(f"4 trials: each maps {C.median(result['per_trial_mapping_rss_MB']):.0f} MB of the {size_kb / 1024:.0f} MB "
          f"cache; their shares add up to {result['sum_mapping_pss_MB']:.0f} MB = "
          f"{result['copies_in_memory']:.2f} copies of what they read", flush=True)
    return result


# ------------------------------------------------------------------ 3. end to end
EPOCH = re.compile(r"epoch\s+(\d+)/\d+ .* (\d+) img/s")


def train_rates(sets: list[str], args: argparse.Namespace) -> list[float]:
    command = [sys.executable, "-m", "tune_app", "train", "quickstart", "--set", "model.name=timm/test_efficientnet",
               "--set", "data.image_size=64", "--set", f"train.epochs={args.epochs}", "--set", "data.hflip=true",
               "--set", f"data.scale=[{SCALE[0]}, {SCALE[1]}]", "--set", f"data.cache_dir={args.work / 'cache'}"]
    for item in sets:
        command += ["--set", item]
    out = subprocess.run(command, capture_output=True, text=True, cwd=C.ROOT, timeout=1800)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return [float(m.group(2)) for m in EPOCH.finditer(out.stdout) if int(m.group(1)) >= 2]


def end_to_end(root: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    sides = {"digits": [], "photos": ["data.dataset=folder", f"data.train_dir={root / 'train'}",
                                      f"data.val_dir={root / 'val'}"]}
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for repeat in range(args.e2e_repeats):
        for name in (list(sides) if repeat % 2 == 0 else list(sides)[::-1]):
            rates[name] += train_rates(sides[name], args)
    base = C.median(rates["digits"])
    rows = [{"data": name, "train_throughput": C.median(v), "epochs 2+": C.spread(v), "vs digits": C.median(v) / base}
            for name, v in rates.items()]
    print(C.table(rows), flush=True)
    return rows


# ------------------------------------------------------------------ 4. large JPEGs
LARGE_SIZES = ((4000, 3000), (4608, 3456), (5472, 3648))  # 12, 16 and 20 MP


def write_large_jpegs(root: Path, count: int) -> list[Path]:
    """``count`` camera-sized JPEGs: crops of the sample photos upscaled, with per-pixel noise as a sensor adds."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_sample_images

    sources = load_sample_images().images
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = root / "large" / ["a", "b"][i % 2] / f"{i:03d}.jpg"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            size = LARGE_SIZES[i % len(LARGE_SIZES)]
            source = Image.fromarray(sources[i % 2]).crop((i * 7 % 40, i * 5 % 30, 600, 400)).resize(size, Image.BICUBIC)
            noisy = np.asarray(source, dtype=np.int16) + rng.normal(0, 4, (size[1], size[0], 3)).astype(np.int16)
            Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=92)
        paths.append(path)
    return paths


def large_jpegs(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from tune_app.training.datasets import DataConfig, scan_folder
    from tune_app.training.datasets._folder import folder_cache
    from tune_app.training.datasets.imaging import decode, frame

    paths = write_large_jpegs(args.work, args.large)
    side = 256
    squares: dict[str, list[Any]] = {"full": [], "draft": []}
    rates: dict[str, list[float]] = {"full": [], "draft": []}
    for repeat in range(args.repeats):
        for name in (["full", "draft"] if repeat % 2 == 0 else ["draft", "full"]):
            start = time.perf_counter()
            out = [np.asarray(frame(decode(str(p), side if name == "draft" else None), side, crop=224)) for p in paths]
            rates[name].append(len(paths) / (time.perf_counter() - start))
            squares[name] = out
    gaps = [np.abs(a.astype(int) - b.astype(int)) for a, b in zip(squares["full"], squares["draft"])]
    rows = [{"decode": name, "images/s/core": C.median(values), "repeats": C.spread(values),
             "vs full": C.median(values) / C.median(rates["full"])} for name, values in rates.items()]
    print(C.table(rows), flush=True)
    diff = {"max_abs": int(max(g.max() for g in gaps)), "mean_abs": float(np.mean([g.mean() for g in gaps])),
            "worst_image_mean_abs": float(max(g.mean() for g in gaps))}
    print(f"stored 256 px squares, draft vs full decode: max |diff| {diff['max_abs']}, mean |diff| "
          f"{diff['mean_abs']:.3f} (worst image's mean {diff['worst_image_mean_abs']:.3f}) of 255", flush=True)
    config = DataConfig(dataset="folder", train_dir=str(args.work / "large"), image_size=224, crop_pct=0.875,
                        cache_dir=str(args.work / "large-cache"))
    cache = folder_cache(config, scan_folder(config))
    start = time.perf_counter()
    cache.ensure(lambda line: print(line, flush=True))
    build = {"images": cache.count, "seconds": time.perf_counter() - start, "cores": len(os.sched_getaffinity(0))}
    return {"images": len(paths), "sizes": [list(s) for s in LARGE_SIZES], "side": side, "rates": rows,
            "difference": diff, "cache_build": build}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tune-app-input-bench")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--per-item-images", type=int, default=384)
    parser.add_argument("--cache-images", type=int, default=1600)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--e2e-repeats", type=int, default=3)
    parser.add_argument("--large", type=int, default=20, help="camera-sized JPEGs for part 4")
    parser.add_argument("--parts", default="1,2,3,4", help="which parts to run, e.g. 4")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few photos, one repeat")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.quick:
        args.photos, args.repeats, args.per_item_images, args.cache_images = 120, 1, 64, 64
        args.epochs, args.e2e_repeats, args.large = 2, 1, 4
        args.work = args.work.with_name(args.work.name + "-quick")
    from tune_app.training.datasets import write_sample_photos

    parts = {int(p) for p in args.parts.split(",")}
    root = args.work / f"photos-{args.photos}"
    if parts & {1, 2, 3} and not (root / "train").is_dir():
        print(f"writing {args.photos} photos to {root}", flush=True)
        write_sample_photos(root, count=args.photos)
    payload: dict[str, Any] = {"machine": C.machine_info(), "quick": args.quick, "photos": args.photos,
                               "batch_size": args.batch_size, "scale": SCALE}
    if 1 in parts:
        print("\n1. training input alone, one core", flush=True)
        payload["input_only"] = input_only(root, args)
    if 2 in parts:
        print("\n2. cache build (all cores) and 4 trials on one cache", flush=True)
        payload["cache"] = build_and_memory(root, args)
    if 3 in parts:
        print("\n3. end to end: tune-app train, test_efficientnet @ 64 px", flush=True)
        payload["end_to_end"] = end_to_end(root, args)
    if 4 in parts:
        print(f"\n4. {args.large} large JPEGs (12-20 MP) framed at 256 px, one core: full decode vs draft", flush=True)
        payload["large_jpegs"] = large_jpegs(root, args)
    print(f"\nwrote {C.write_json('input_pipeline', payload, args.out)}")


if __name__ == "__main__":
    main()
