"""Real sweeps on a folder of real photographs, as a user runs them: tune-app search with the image cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tune_app.training.datasets import write_sample_photos

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]


def search(tmp_path: Path, root: Path, *sets: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "tune_app", "search", "photos", "--storage", str(tmp_path / "runs"), "--name", "p",
            "--set", f"data.train_dir={root / 'train'}", "--set", f"data.val_dir={root / 'val'}",
            "--set", "model.pretrained=false", "--set", "data.image_size=32", "--set", "data.batch_size=8",
            "--set", f"data.cache_dir={tmp_path / 'cache'}", "--set", "tune.resources={cpu: 1, gpu: 0}",
            "--set", "tune.max_concurrent=2", "--set", "tune.scheduler=fifo", "--set", "tune.search_alg=random",
            "--set", "search.amp=off", "--set", "search.freeze_depth=0", "--set", "search.lr=0.003"]
    for item in sets:
        args += ["--set", item]
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_a_classification_sweep_on_a_photo_folder_reads_one_cache_and_counts_skipped_images(tmp_path):
    root = write_sample_photos(tmp_path / "photos", count=40, size=(160, 120))
    bad = root / "train" / "flower" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 a JPEG header and nothing else")
    result = search(tmp_path, root, "model.name=timm/test_resnet", "train.epochs=2", "tune.num_samples=2",
                    "data.skip_bad_images=true")
    assert result.returncode == 0, result.stderr[-3000:]
    # every file has a row (the broken one's stays empty); 33 = floor(32 / 0.95), test_resnet's crop_pct
    assert "data.cache: auto: caching 41 images at 33x33 uint8" in result.stdout
    assert "left out 1 unreadable image" in result.stdout
    experiment = tmp_path / "runs" / "p"
    results = pd.read_csv(experiment / "results.csv")
    assert len(results) == 2 and set(results["status"]) == {"TERMINATED"} and (results["epochs"] == 2).all()
    assert results["val_acc"].notna().all()
    data = json.loads((experiment / "data.json").read_text())
    assert data["skipped"] == [str(bad)] and data["train_images"] == 32 and data["val_images"] == 8
    assert "1 unreadable image left out (data.skip_bad_images)" in (experiment / "report.md").read_text()
    assert len(list((tmp_path / "cache").glob("*/meta.json"))) == 1  # the trials mapped the driver's cache


def test_a_segmentation_sweep_on_a_photo_folder(tmp_path):
    root = write_sample_photos(tmp_path / "photos", count=24, size=(160, 120), task="segmentation")
    result = search(tmp_path, root, "task=segmentation", "model.name=smp/Unet", "model.encoder=test_resnet",
                    "train.metric=val_dice", "train.epochs=1", "tune.num_samples=2", "search.loss={choice: [dice, ce]}",
                    "data.scale=[0.5, 1.0]", "search.layer_decay=1.0",  # an smp model has no layer groups
                    "search.mixup=0.0", "search.cutmix=0.0", "search.augment=none",  # classification's
                    "search.scheduler=cosine")  # the template warms up for an epoch: this trial has one
    assert result.returncode == 0, result.stderr[-3000:]
    results = pd.read_csv(tmp_path / "runs" / "p" / "results.csv")
    assert len(results) == 2 and set(results["status"]) == {"TERMINATED"}
    assert results["val_dice"].between(0, 1).all()


def write_marker_folder(root: Path, per_class: int) -> None:
    """Two classes told apart only by where a bright band is (top or bottom half), each image in one of three
    storages: plain JPEG; stored upside down with EXIF orientation 3 (read as stored, the band flips
    halves and the label lies); 16-bit PNG in the upper range (clipped to 8 bits, everything is white)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("val", per_class // 2)):
        for label in ("top", "bottom"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                gray = rng.uniform(0.1, 0.35, (48, 64))
                band = slice(4, 20) if label == "top" else slice(28, 44)
                gray[band, rng.integers(0, 24):][:, :rng.integers(24, 40)] = rng.uniform(0.8, 1.0)
                kind = i % 3
                if kind == 0:
                    Image.fromarray((gray * 255).astype(np.uint8)).convert("RGB").save(folder / f"{i}.jpg", quality=90)
                elif kind == 1:
                    exif = Image.Exif()
                    exif[0x0112] = 3
                    Image.fromarray((gray[::-1, ::-1] * 255).astype(np.uint8)).convert("RGB").save(
                        folder / f"{i}.jpg", quality=90, exif=exif)
                else:
                    Image.fromarray((gray * 65535).astype(np.uint16)).save(folder / f"{i}.png")
    (root / "train" / "top" / "notes.txt").write_text("where these came from")


@pytest.mark.slow
@pytest.mark.ray
def test_a_sweep_learns_a_label_only_correctly_decoded_pixels_show(tmp_path):
    root = tmp_path / "markers"
    write_marker_folder(root, per_class=36)
    result = search(tmp_path, root, "model.name=timm/test_resnet", "train.epochs=2", "tune.num_samples=2",
                    "data.scale=[0.8, 1.0]", "data.hflip=true", "search.lr=0.01",
                    # what this checks is the decoding: the template's knobs that slow a 2-epoch start are off
                    "search.mixup=0.0", "search.cutmix=0.0", "search.augment=none", "search.ema=0.0",
                    "search.layer_decay=1.0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "data: ignored 1 file that is not an image (by extension): " in result.stdout
    experiment = tmp_path / "runs" / "p"
    results = pd.read_csv(experiment / "results.csv")
    assert results["val_acc"].max() >= 0.95, results[["trial_id", "val_acc"]]
    data = json.loads((experiment / "data.json").read_text())
    assert data["ignored"] == [str(root / "train" / "top" / "notes.txt")]
    assert "1 file in the image folders ignored" in (experiment / "report.md").read_text()
