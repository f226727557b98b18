"""The decoded-once image cache, on real photographs (crops of scikit-learn's sample images)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tune_app.training.datasets import (
    ArrayDataset,
    BadImagesError,
    DataConfig,
    FolderItems,
    build_data,
    scan_folder,
    write_sample_photos,
)
from tune_app.training.datasets._folder import choose_cache, folder_cache

ROOT = Path(__file__).resolve().parents[2]
PLAIN = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # pixels in [0, 1], for comparisons


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return write_sample_photos(tmp_path_factory.mktemp("photos"), count=40)


@pytest.fixture(scope="module")
def seg_photos(tmp_path_factory) -> Path:
    return write_sample_photos(tmp_path_factory.mktemp("seg"), count=16, task="segmentation")


def photo_config(root: Path, cache_dir: Path, **overrides) -> DataConfig:
    return DataConfig(**{"dataset": "folder", "train_dir": str(root / "train"), "val_dir": str(root / "val"),
                         "image_size": 64, "crop_pct": 0.875, "cache_dir": str(cache_dir), **overrides})


def caches(cache_dir: Path) -> list[Path]:
    return sorted(p.parent for p in cache_dir.glob("*/meta.json"))


@pytest.mark.parametrize("size", [224, 64])
def test_cached_validation_pixels_are_timms_validation_transform(photos, tmp_path, size):
    from timm.data import create_transform

    bundle = build_data(photo_config(photos, tmp_path, image_size=size, **PLAIN))
    assert isinstance(bundle.val, ArrayDataset)
    reference = create_transform(input_size=(3, size, size), crop_pct=0.875, interpolation="bilinear",
                                 is_training=False, **PLAIN)
    gaps = [(reference(Image.open(path).convert("RGB")) - bundle.val[i][0]).abs().mean().item()
            for i, (path, _) in enumerate(bundle.val.samples)]
    assert len(gaps) == 8 and max(gaps) < 2 / 255


def test_the_per_item_path_frames_images_as_the_cache_does(photos, tmp_path):
    cached = build_data(photo_config(photos, tmp_path, **PLAIN))
    per_item = build_data(photo_config(photos, tmp_path, cache="off", **PLAIN))
    assert isinstance(per_item.val, FolderItems) and per_item.val.samples == cached.val.samples
    for i in range(len(cached.val)):
        assert (cached.val[i][0] - per_item.val[i][0]).abs().mean() < 2 / 255
    assert per_item.notes[0].startswith("data.cache: off")


def test_the_cache_stores_each_image_once_as_uint8_squares(photos, tmp_path):
    bundle = build_data(photo_config(photos, tmp_path))
    (directory,) = caches(tmp_path)
    meta = json.loads((directory / "meta.json").read_text())
    side = 73  # floor(64 / 0.875): timm's validation resize
    assert meta["count"] == 40 and meta["side"] == side and meta["bad"] == {}
    assert (directory / "images.u8").stat().st_size == 40 * 3 * side * side
    assert bundle.train.images.shape == (40, side, side, 3) and len(bundle.train) + len(bundle.val) == 40
    assert "caching 40 images at 73x73 uint8" in bundle.notes[0]
    again = build_data(photo_config(photos, tmp_path))  # found, not rebuilt
    assert "reading 40 images at 73x73 uint8 (1 MB) from the image cache" in again.notes[0]
    assert caches(tmp_path) == [directory]


def test_a_touched_file_makes_a_new_cache_and_old_ones_are_pruned(photos, tmp_path):
    config = photo_config(photos, tmp_path)
    build_data(config)
    first = caches(tmp_path)
    victim = Path(scan_folder(config).images[3])
    stat = victim.stat()
    try:
        os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        build_data(config)
        assert len(caches(tmp_path)) == 2 and first[0] in caches(tmp_path)
        small = build_data(photo_config(photos, tmp_path, image_size=48, cache_max_gb=400_000 / 1e9))
        # 40 x 3 x 54^2 bytes fit under the cap; the two older caches (73 px) had to go, oldest first
        assert caches(tmp_path) == [small.train.images.cache.path]
    finally:
        os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.slow
def test_two_trials_started_together_build_the_cache_once(photos, tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from tune_app.training.datasets import DataConfig, scan_folder
        from tune_app.training.datasets._folder import folder_cache
        config = DataConfig(dataset="folder", train_dir={str(photos / "train")!r}, val_dir={str(photos / "val")!r},
                            image_size=224, crop_pct=0.875, cache_dir={str(tmp_path / "cache")!r})
        cache = folder_cache(config, scan_folder(config))
        Path(sys.argv[1]).touch()
        while len(list(Path({str(tmp_path)!r}).glob("ready-*"))) < 2:  # start together
            time.sleep(0.01)
        print("built" if cache.ensure() else "found", flush=True)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"ready-{i}")], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    said = sorted(out.strip() for out, _ in outputs)
    assert said == ["built", "found"], outputs
    waited = next(err for out, err in outputs if out.strip() == "found")
    assert "another process is building the image cache" in waited
    assert len(caches(tmp_path / "cache")) == 1


def test_a_corrupt_jpeg_is_an_error_naming_the_file(photos, tmp_path):
    bad = photos / "train" / "china" / "zz_corrupt.jpg"
    bad.write_bytes((photos / "val" / "china" / "00000.jpg").read_bytes()[:300])  # cut short
    try:
        for cache in ("auto", "off"):
            with pytest.raises(BadImagesError) as info:
                build_data(photo_config(photos, tmp_path / cache, cache=cache))
            assert f"data.train_dir: cannot read 1 image: {bad}" in str(info.value)
            assert "data.skip_bad_images: true" in str(info.value)
        bundle = build_data(photo_config(photos, tmp_path / "auto", skip_bad_images=True))
        assert bundle.skipped == (str(bad),) and len(bundle.train) == 32
        assert any("left out 1 unreadable image" in note for note in bundle.notes)
        assert str(bad) not in {path for path, _ in bundle.train.samples}
    finally:
        bad.unlink()


@pytest.mark.slow
def test_a_corrupt_image_stops_the_command_with_exit_2(photos, tmp_path):
    bad = photos / "val" / "flower" / "zz_corrupt.jpg"
    bad.write_bytes(b"not a jpeg at all")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tune_app", "train", "quickstart", "--set", "data.dataset=folder",
             "--set", f"data.train_dir={photos / 'train'}", "--set", f"data.val_dir={photos / 'val'}",
             "--set", "model.name=timm/test_resnet", "--set", f"data.cache_dir={tmp_path}"],
            capture_output=True, text=True, cwd=ROOT, timeout=300)
    finally:
        bad.unlink()
    assert result.returncode == 2, result.stderr
    assert f"error: data.val_dir: cannot read 1 image: {bad}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_auto_reads_per_item_when_the_cache_would_not_fit_the_disk(photos, tmp_path):
    # 40 squares of 40960 px, 5 GB each: no test machine has 200 GB free
    config = photo_config(photos, tmp_path, image_size=2048, crop_pct=0.05)
    use, note = choose_cache(config, folder_cache(config, scan_folder(config)))
    assert not use and "GB free, so images are read per item" in note and "data.cache_dir" in note
    assert caches(tmp_path) == []


def test_segmentation_caches_masks_with_their_images(seg_photos, tmp_path):
    config = photo_config(seg_photos, tmp_path, task="segmentation", crop_pct=1.0, **PLAIN)
    bundle = build_data(config)
    assert bundle.num_classes == 2 and bundle.class_names == ("background", "foreground")
    assert bundle.train.masks.shape == (16, 64, 64)
    per_item = build_data(photo_config(seg_photos, tmp_path, task="segmentation", crop_pct=1.0, cache="off",
                                       **PLAIN))
    for i in range(len(bundle.val)):
        image, mask = bundle.val[i]
        other_image, other_mask = per_item.val[i]
        assert mask.dtype == torch.int64 and set(mask.unique().tolist()) == {0, 1}
        assert torch.equal(mask, other_mask) and (image - other_image).abs().mean() < 2 / 255
        # the mask marks the pasted ellipse: its pixels differ from the background photo's
        assert 0.02 < mask.float().mean() < 0.5


def test_a_mapped_split_pickles_small_and_maps_again_where_it_lands(photos, tmp_path):
    import pickle

    bundle = build_data(photo_config(photos, tmp_path))
    payload = pickle.dumps(bundle)
    assert len(payload) < 20_000  # file names, not pixels
    restored = pickle.loads(payload)
    assert torch.equal(restored.val[2][0], bundle.val[2][0])


def test_the_cache_build_reports_progress_and_uses_a_process_pool_for_many_images(tmp_path):
    root = write_sample_photos(tmp_path / "many", count=600, size=(96, 72))
    config = photo_config(root, tmp_path / "cache", image_size=32)
    cache = folder_cache(config, scan_folder(config))
    lines: list[str] = []
    start = time.monotonic()
    assert cache.ensure(lines.append)
    cpus = len(os.sched_getaffinity(0))
    assert f"with {min(cpus, 2)} process" in lines[0]
    assert lines[-1].startswith("  image cache: 600 images in") and "images/s" in lines[-1]
    assert time.monotonic() - start < 120
    images = np.memmap(cache.path / "images.u8", np.uint8, "r", shape=cache.image_shape())
    assert images[:, 10:20, 10:20].std() > 10  # real photo content in every row, not zeros
    assert (images.reshape(600, -1).max(1) > 0).all()
