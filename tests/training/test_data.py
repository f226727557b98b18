"""Datasets: built-in digits and shapes, folders written here with PIL; real data, no mocks."""

from __future__ import annotations

import math
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from tune_app.training.datasets import DATASETS, DataConfig, build_data, generate_shapes
from tune_app.training.tasks import TASKS

HALF = (0.5, 0.5, 0.5)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RED, BLUE, GREEN = (220, 30, 30), (30, 30, 220), (30, 200, 30)


def shapes(**overrides) -> DataConfig:
    return DataConfig(**{"dataset": "shapes", "task": "segmentation", "image_size": 32, **overrides})


def pixels(image: torch.Tensor, mean=HALF, std=HALF) -> torch.Tensor:
    """Undo normalization: back to [0, 255]."""
    return (image * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)) * 255


def write_image(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def solid(colour, height=12, width=16) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)).copy()


def halves(height: int, width: int, left=RED, right=BLUE) -> np.ndarray:
    """An image whose left half is ``left`` and right half ``right``: flips show."""
    image = solid(right, height, width)
    image[:, : width // 2] = left
    return image


# ------------------------------------------------------------------ digits
def test_digits_has_every_image_once_with_a_stratified_split():
    bundle = build_data(DataConfig(dataset="digits", image_size=24))
    assert (len(bundle.train), len(bundle.val)) == (1437, 360)
    assert bundle.num_classes == 10 and bundle.in_chans == 3 and bundle.task == "classification"
    image, _label = bundle.train[0]
    assert image.shape == (3, 24, 24) and image.dtype == torch.float32
    assert image.min() >= -1.0 and image.max() <= 1.0
    val_counts = np.bincount(bundle.val.targets, minlength=10)
    assert val_counts.min() >= 35 and val_counts.max() <= 37  # 20% of each class's ~180 images


def test_the_split_does_not_depend_on_anything_but_its_seed():
    a = build_data(DataConfig(image_size=8))
    b = build_data(DataConfig(image_size=8))
    assert np.array_equal(a.val.images, b.val.images) and np.array_equal(a.train.targets, b.train.targets)


def test_digits_use_a_given_mean_and_std():
    plain = build_data(DataConfig(image_size=8))
    imagenet = build_data(DataConfig(image_size=8, mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD)))
    torch.testing.assert_close(pixels(imagenet.val[3][0], IMAGENET_MEAN, IMAGENET_STD), pixels(plain.val[3][0]))
    assert not torch.equal(imagenet.val[3][0], plain.val[3][0])


def test_digits_augment_training_images_only():
    bundle = build_data(DataConfig(image_size=16, hflip=True, scale=(0.3, 0.6)))
    torch.manual_seed(0)
    assert not torch.equal(bundle.train[0][0], bundle.train[0][0])
    assert torch.equal(bundle.val[0][0], bundle.val[0][0])


# ---------------------------------------------------------------- registry
@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_declares_tasks_help_and_a_normalization(name):
    info = DATASETS[name]
    assert info.tasks and set(info.tasks) <= set(TASKS)
    assert info.help and len(info.mean) == len(info.std) == 3


def test_unknown_dataset_is_an_error():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; valid: digits, shapes, folder"):
        build_data(DataConfig(dataset="mnist"))


@pytest.mark.parametrize(("dataset", "task", "message"), [
    ("digits", "segmentation", "dataset 'digits' supports classification, not segmentation; "
                               "datasets for segmentation: shapes, folder"),
    ("shapes", "classification", "dataset 'shapes' supports segmentation, not classification; "
                                 "datasets for classification: digits, folder"),
    ("digits", "detection", "unknown task 'detection' .*; valid: classification, segmentation"),
], ids=["digits-segmentation", "shapes-classification", "unknown-task"])
def test_a_task_the_dataset_does_not_support_is_an_error(dataset, task, message):
    with pytest.raises(ValueError, match=message):
        build_data(DataConfig(dataset=dataset, task=task))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("scale", (0.8, 0.2), r"data.scale: must be \[low, high\] with 0 < low <= high <= 1, got \[0.8, 0.2\]"),
    ("scale", (0.0, 0.5), r"data.scale: must be \[low, high\] with 0 < low <= high <= 1, got \[0.0, 0.5\]"),
    ("scale", (0.5,), "data.scale must hold 2 numbers"),
    ("mean", (0.5, 0.5), "data.mean must hold 3 numbers"),
    ("std", (0.5, 0.0, 0.5), "data.std must be positive"),
    ("val_fraction", 1.0, r"data.val_fraction must lie in \(0, 1\), got 1.0"),
    ("image_size", 0, "data.image_size must be a positive integer, got 0"),
])
def test_impossible_config_values_are_errors_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        DataConfig(**{field: value})


def test_config_lists_become_tuples_so_the_config_stays_hashable():
    config = DataConfig(scale=[0.5, 1], mean=[0.1, 0.2, 0.3], std=[1, 1, 1])
    assert config.scale == (0.5, 1.0) and config.mean == (0.1, 0.2, 0.3)
    hash(config)


# ------------------------------------------------------------------ shapes
def test_shapes_bundle_sizes_classes_and_item_types():
    bundle = build_data(shapes())
    assert (len(bundle.train), len(bundle.val)) == (640, 160)
    assert bundle.task == "segmentation" and bundle.num_classes == 4 and bundle.in_chans == 3
    assert bundle.class_names == ("background", "circle", "square", "triangle")
    image, mask = bundle.train[5]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert mask.shape == (32, 32) and mask.dtype == torch.int64
    assert image.min() >= -1.0 and image.max() <= 1.0
    batch_images, batch_masks = next(iter(DataLoader(bundle.train, batch_size=8)))
    assert batch_images.shape == (8, 3, 32, 32) and batch_masks.shape == (8, 32, 32)


def test_shapes_images_are_the_stored_pixels_normalized():
    config = shapes(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    bundle = build_data(config)
    image, mask = bundle.val[7]
    torch.testing.assert_close(pixels(image, IMAGENET_MEAN, IMAGENET_STD),
                               torch.from_numpy(bundle.val.images[7]).permute(2, 0, 1).float(), atol=1e-3, rtol=0)
    assert torch.equal(mask, torch.from_numpy(bundle.val.masks[7]).long())


def test_shapes_are_deterministic_from_the_seed():
    a, b, c = build_data(shapes()), build_data(shapes()), build_data(shapes(split_seed=1))
    assert np.array_equal(a.train.images, b.train.images) and np.array_equal(a.val.masks, b.val.masks)
    assert all(torch.equal(x, y) for x, y in zip(a.train[11], b.train[11]))
    assert not np.array_equal(a.train.images, c.train.images)
    assert not np.array_equal(a.train.masks, c.train.masks)


def _depth(kind: int, cx: float, cy: float, radius: float, angle: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance into a shape (positive inside), from its vertices: independent of the generator."""
    if kind == 1:
        return radius - np.hypot(x - cx, y - cy)
    sides = 4 if kind == 2 else 3
    area = math.pi * radius**2  # every shape has a circle's area for its radius
    inradius = math.sqrt(area / (sides * math.tan(math.pi / sides)))  # a regular polygon's area: n a^2 tan(pi/n)
    circumradius = inradius / math.cos(math.pi / sides)
    corners = [angle + math.pi / sides + 2 * math.pi * k / sides for k in range(sides)]
    vx = [cx + circumradius * math.cos(t) for t in corners]
    vy = [cy + circumradius * math.sin(t) for t in corners]
    depth = np.full(np.broadcast_shapes(x.shape, y.shape), np.inf)
    for k in range(sides):  # corners run counter-clockwise: inside is left of every edge
        ex, ey = vx[(k + 1) % sides] - vx[k], vy[(k + 1) % sides] - vy[k]
        cross = (ex * (y - vy[k]) - ey * (x - vx[k])) / math.hypot(ex, ey)
        depth = np.minimum(depth, cross)
    return depth


def test_shape_masks_are_exact_the_last_painted_shape_wins():
    size = 48
    scenes = generate_shapes(12, size, seed=7, max_rotation=math.pi)
    y, x = np.mgrid[0:size, 0:size] + 0.5
    checked = 0
    for n in range(12):
        expected = np.zeros((size, size), np.int64)
        top = np.full((size, size), -1)
        near_edge = np.zeros((size, size), bool)
        for slot in range(scenes.kind.shape[1]):
            kind = int(scenes.kind[n, slot])
            if kind == 0:
                continue
            depth = _depth(kind, scenes.cx[n, slot], scenes.cy[n, slot], scenes.radius[n, slot],
                           scenes.angle[n, slot], x, y)
            near_edge |= np.abs(depth) < 1e-3  # float rounding may go either way there
            expected[depth > 0] = kind
            top[depth > 0] = slot
        keep = ~near_edge
        assert np.array_equal(scenes.masks[n][keep], expected[keep])
        for slot in np.unique(top[top >= 0]):  # shapes are flat: painted pixels have the shape's colour
            colour = scenes.images[n][:, (top == slot) & keep]
            assert (colour == scenes.colour[n, slot][:, None]).all()
        checked += keep.sum()
    assert checked > 0.99 * 12 * size * size


def test_shapes_every_class_in_both_sets_and_every_image_has_a_shape():
    bundle = build_data(shapes())
    for part in (bundle.train, bundle.val):
        counts = np.bincount(part.masks.ravel(), minlength=4)
        assert (counts > 0).all() and len(counts) == 4
        foreground = (part.masks > 0).mean(axis=(1, 2))
        assert foreground.min() > 0.0
        assert 0.05 < foreground.mean() < 0.4  # shapes sized for learning, not specks or floods
    scenes = generate_shapes(800, 32, seed=0)
    shapes_per_image = (scenes.kind > 0).sum(1)
    assert set(np.unique(shapes_per_image)) == {1, 2, 3}
    assert set(np.unique(scenes.kind[scenes.kind > 0])) == {1, 2, 3}


def test_shapes_binary_merges_every_shape_into_foreground():
    multi, binary = build_data(shapes()), build_data(shapes(binary=True))
    assert binary.num_classes == 2 and binary.class_names == ("background", "foreground")
    assert np.array_equal(binary.train.masks, (multi.train.masks > 0).astype(np.uint8))
    assert set(torch.unique(binary.val[3][1]).tolist()) <= {0, 1}


def test_shapes_hflip_moves_image_and_mask_together_on_train_only():
    bundle = build_data(shapes(hflip=True))
    plain = build_data(shapes())
    torch.manual_seed(0)
    ref_image, ref_mask = plain.train[4]
    flips = set()
    for _ in range(24):
        image, mask = bundle.train[4]
        if torch.equal(image, ref_image) and torch.equal(mask, ref_mask):
            flips.add(False)
        else:
            assert torch.equal(image, ref_image.flip(-1)) and torch.equal(mask, ref_mask.flip(-1))
            flips.add(True)
    assert flips == {False, True}
    assert all(torch.equal(bundle.val[4][i], plain.val[4][i]) for i in range(2))


def test_shapes_random_resized_crop_keeps_masks_as_class_indices():
    bundle = build_data(shapes(image_size=32, scale=(0.2, 0.5)))
    torch.manual_seed(0)
    image, mask = bundle.train[0]
    assert image.shape == (3, 32, 32) and mask.shape == (32, 32)
    masks = torch.stack([bundle.train[i][1] for i in range(40)])
    assert set(torch.unique(masks).tolist()) <= {0, 1, 2, 3}


@pytest.mark.parametrize("size", [32, 64])
def test_shapes_generation_time_and_compact_pickle(size):
    start = time.perf_counter()
    bundle = build_data(shapes(image_size=size))
    elapsed = time.perf_counter() - start
    payload = len(pickle.dumps(bundle))
    raw = 800 * size * size * 4  # uint8 RGB + uint8 mask per image
    print(f"shapes at {size}px: built in {elapsed:.2f}s, pickles to {payload / 1e6:.1f} MB")
    assert payload < 1.05 * raw  # pixels stay uint8; nothing else of weight travels
    restored = pickle.loads(pickle.dumps(bundle.train))
    assert all(torch.equal(a, b) for a, b in zip(restored[0], bundle.train[0]))


# ---------------------------------------------------- folder: classification
@pytest.fixture
def class_folders(tmp_path: Path) -> Path:
    """train/{bird,cat,dog} (PNG and JPEG, assorted sizes) and val/{cat,dog}."""
    colours = {"bird": GREEN, "cat": RED, "dog": BLUE}
    counts = {"bird": 4, "cat": 5, "dog": 6}
    for name, colour in colours.items():
        for i in range(counts[name]):
            ext = "png" if i % 2 else "jpg"
            write_image(tmp_path / "train" / name / f"{i}.{ext}", solid(colour, 10 + i, 14))
    for name in ("cat", "dog"):
        for i in range(2):
            write_image(tmp_path / "val" / name / f"{i}.png", solid(colours[name]))
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    return tmp_path


def folder(root: Path, val: str | None = "val", **overrides) -> DataConfig:
    """A folder config; crop_pct 1 (the whole square validates) unless a test frames images itself."""
    return DataConfig(**{"dataset": "folder", "train_dir": str(root / "train"), "crop_pct": 1.0,
                         "val_dir": None if val is None else str(root / val), "image_size": 16, **overrides})


def test_folder_classification_reads_classes_counts_and_targets(class_folders):
    bundle = build_data(folder(class_folders))
    assert bundle.class_names == ("bird", "cat", "dog") and bundle.num_classes == 3
    assert (len(bundle.train), len(bundle.val)) == (15, 4)
    assert np.bincount(bundle.train.targets).tolist() == [4, 5, 6]
    assert sorted(bundle.val.targets) == [1, 1, 2, 2]  # val has no bird: indices follow train
    image, target = bundle.val[0]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32
    assert target.dtype == torch.int64 and target.ndim == 0


def test_folder_classification_val_is_resized_and_normalized_with_imagenet_stats(class_folders):
    bundle = build_data(folder(class_folders))
    image, target = bundle.val[0]
    assert bundle.class_names[int(target)] == "cat"
    expected = torch.tensor(RED, dtype=torch.float32).view(3, 1, 1).expand(3, 16, 16)
    torch.testing.assert_close(pixels(image, IMAGENET_MEAN, IMAGENET_STD), expected, atol=1e-3, rtol=0)


def test_folder_classification_augments_training_images_only(tmp_path):
    for split in ("train", "val"):
        for i in range(2):
            write_image(tmp_path / split / "halves" / f"{i}.png", halves(20, 24))
    bundle = build_data(folder(tmp_path, image_size=8, hflip=True, scale=(0.1, 0.3)))
    torch.manual_seed(0)
    draws = torch.stack([bundle.train[0][0] for _ in range(12)])
    assert (draws - draws[0]).abs().amax() > 0.5  # random crops and flips differ
    val = torch.stack([bundle.val[0][0] for _ in range(4)])
    assert torch.equal(val, val[:1].expand_as(val))
    red_left = pixels(val[0], IMAGENET_MEAN, IMAGENET_STD)
    assert red_left[0, :, 0].min() > 200 and red_left[2, :, -1].min() > 200  # no flip, no crop


def test_folder_classification_hflip_without_scale_flips_the_whole_image(tmp_path):
    write_image(tmp_path / "train" / "halves" / "0.png", halves(8, 8))
    write_image(tmp_path / "train" / "halves" / "1.png", halves(8, 8))
    bundle = build_data(folder(tmp_path, val=None, image_size=8, hflip=True))
    torch.manual_seed(0)
    reds = {bool(pixels(bundle.train[0][0], IMAGENET_MEAN, IMAGENET_STD)[0, 0, 0] > 128) for _ in range(20)}
    assert reds == {True, False}


def test_folder_without_val_dir_splits_train_dir_by_class(class_folders):
    config = folder(class_folders, val=None, val_fraction=0.4)
    bundle = build_data(config)
    train, val = set(bundle.train.samples), set(bundle.val.samples)
    assert not train & val and len(train | val) == 15
    assert sorted(np.bincount(bundle.val.targets, minlength=3).tolist()) == [2, 2, 2]
    assert build_data(config).val.samples == bundle.val.samples  # fixed by split_seed


def test_folder_datasets_pickle_small(tmp_path):
    for i in range(50):
        write_image(tmp_path / "train" / f"class_{i % 5}" / f"{i:03d}.png", solid(RED, 64, 64))
    bundle = build_data(folder(tmp_path, val=None))
    size = len(pickle.dumps(bundle))
    print(f"folder bundle of 50 files pickles to {size} bytes")
    assert size < 1_000_000
    restored = pickle.loads(pickle.dumps(bundle.val))
    assert torch.equal(restored[0][0], bundle.val[0][0])


def test_folder_classification_loads_with_worker_processes(class_folders):
    bundle = build_data(folder(class_folders, hflip=True, scale=(0.5, 1.0)))
    loader = DataLoader(bundle.train, batch_size=4, shuffle=True, num_workers=2)
    batches = list(loader)
    assert sum(len(targets) for _, targets in batches) == 15
    images, targets = batches[0]
    assert images.shape == (4, 3, 16, 16) and targets.dtype == torch.int64


def test_missing_train_dir_is_an_error_naming_the_field(tmp_path):
    with pytest.raises(ValueError, match="data.train_dir is required for dataset 'folder'"):
        build_data(DataConfig(dataset="folder"))
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match=f"data.train_dir: no such directory: {missing}"):
        build_data(DataConfig(dataset="folder", train_dir=str(missing)))


def test_missing_val_dir_is_an_error_naming_the_field(class_folders):
    with pytest.raises(ValueError, match=f"data.val_dir: no such directory: {class_folders / 'nope'}"):
        build_data(folder(class_folders, val="nope"))


def test_empty_train_dir_is_an_error_naming_the_field(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(ValueError, match=f"data.train_dir: {tmp_path / 'train'} is empty"):
        build_data(folder(tmp_path, val=None))


def test_a_class_folder_without_images_is_an_error(class_folders):
    (class_folders / "train" / "emu").mkdir()
    with pytest.raises(ValueError, match=f"data.train_dir: class folder {class_folders / 'train' / 'emu'} holds no images"):
        build_data(folder(class_folders))


def test_a_val_class_missing_from_train_is_an_error(class_folders):
    write_image(class_folders / "val" / "zebra" / "0.png", solid(RED))
    with pytest.raises(ValueError, match=r"data.val_dir: class folders \['zebra'\] .* are not among the training classes"):
        build_data(folder(class_folders))


# ------------------------------------------------------ folder: segmentation
def write_pair(root: Path, stem: str, image: np.ndarray, mask: np.ndarray, image_ext: str = "png") -> None:
    write_image(root / "images" / f"{stem}.{image_ext}", image)
    write_image(root / "masks" / f"{stem}.png", mask)


def stripes_mask(height: int, width: int, classes: tuple[int, ...]) -> np.ndarray:
    """Vertical stripes, one per class."""
    mask = np.zeros((height, width), np.uint8)
    for i, value in enumerate(classes):
        mask[:, i * width // len(classes):(i + 1) * width // len(classes)] = value
    return mask


@pytest.fixture
def mask_folders(tmp_path: Path) -> Path:
    """train: 6 pairs with classes 0..3 at assorted sizes; val: 2 pairs with classes 0..2."""
    for i in range(6):
        height, width = 20 + 2 * i, 24
        write_pair(tmp_path / "train", f"t{i}", solid(GREEN, height, width), stripes_mask(height, width, (0, 1, 2, 3)),
                   image_ext="jpg" if i % 2 else "png")
    for i in range(2):
        write_pair(tmp_path / "val", f"v{i}", solid(GREEN, 16, 16), stripes_mask(16, 16, (0, 1, 2)))
    return tmp_path


def seg_folder(root: Path, val: str | None = "val", **overrides) -> DataConfig:
    return folder(root, val, task="segmentation", **overrides)


def test_folder_segmentation_counts_classes_from_the_training_masks(mask_folders):
    bundle = build_data(seg_folder(mask_folders))
    assert bundle.task == "segmentation" and bundle.num_classes == 4
    assert bundle.class_names == ("background", "class_1", "class_2", "class_3")
    assert (len(bundle.train), len(bundle.val)) == (6, 2)
    image, mask = bundle.train[1]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32
    assert mask.shape == (16, 16) and mask.dtype == torch.int64
    assert torch.equal(torch.unique(mask), torch.arange(4))  # nearest resize: indices, not blends
    assert torch.equal(bundle.val[0][1], torch.from_numpy(stripes_mask(16, 16, (0, 1, 2))).long())


def test_folder_segmentation_reads_0_255_masks_as_0_1(tmp_path):
    for i in range(3):
        write_pair(tmp_path / "train", f"{i}", solid(RED, 16, 16), stripes_mask(16, 16, (0, 255)))
    bundle = build_data(seg_folder(tmp_path, val=None))
    assert bundle.num_classes == 2 and bundle.class_names == ("background", "foreground")
    assert torch.equal(bundle.train[0][1], torch.from_numpy(stripes_mask(16, 16, (0, 1))).long())


def test_folder_segmentation_binary_merges_classes(mask_folders):
    bundle = build_data(seg_folder(mask_folders, binary=True))
    assert bundle.num_classes == 2
    assert torch.equal(bundle.val[0][1], torch.from_numpy(stripes_mask(16, 16, (0, 1, 1))).long())


def test_folder_segmentation_hflip_keeps_image_and_mask_aligned(tmp_path):
    for i in range(2):
        write_pair(tmp_path / "train", f"{i}", halves(16, 16), stripes_mask(16, 16, (1, 2)))
    bundle = build_data(seg_folder(tmp_path, val=None, hflip=True))
    torch.manual_seed(0)
    orientations = set()
    for _ in range(20):
        image, mask = bundle.train[0]
        rgb = pixels(image, IMAGENET_MEAN, IMAGENET_STD)
        red = rgb[0] > rgb[2]
        assert torch.equal(red, mask == 1) and torch.equal(~red, mask == 2)
        orientations.add(bool(mask[0, 0] == 1))
    assert orientations == {True, False}
    val_mask = bundle.val[0][1]
    assert bool(val_mask[0, 0] == 1) and torch.equal(bundle.val[0][1], val_mask)


def test_folder_segmentation_random_crops_keep_image_and_mask_aligned(tmp_path):
    for i in range(2):
        write_pair(tmp_path / "train", f"{i}", halves(40, 40), stripes_mask(40, 40, (1, 2)))
    bundle = build_data(seg_folder(tmp_path, val=None, hflip=True, scale=(0.2, 0.6), image_size=12))
    torch.manual_seed(0)
    agree = []
    for _ in range(20):
        image, mask = bundle.train[0]
        assert set(torch.unique(mask).tolist()) <= {1, 2}
        rgb = pixels(image, IMAGENET_MEAN, IMAGENET_STD)
        agree.append(((rgb[0] > rgb[2]) == (mask == 1)).float().mean())
    assert min(agree) > 0.85  # only the resampled boundary column may disagree


def test_folder_segmentation_loads_with_worker_processes(mask_folders):
    bundle = build_data(seg_folder(mask_folders, hflip=True))
    images, masks = next(iter(DataLoader(bundle.train, batch_size=3, num_workers=2)))
    assert images.shape == (3, 3, 16, 16) and masks.shape == (3, 16, 16) and masks.dtype == torch.int64


def test_an_image_without_a_mask_is_an_error_naming_it(mask_folders):
    lonely = write_image(mask_folders / "train" / "images" / "lonely.png", solid(RED))
    with pytest.raises(ValueError, match=f"data.train_dir: image {lonely} has no mask"):
        build_data(seg_folder(mask_folders))


def test_a_mask_without_an_image_is_an_error_naming_it(mask_folders):
    stray = write_image(mask_folders / "val" / "masks" / "stray.png", stripes_mask(16, 16, (0, 1)))
    with pytest.raises(ValueError, match=f"data.val_dir: mask {stray} has no image"):
        build_data(seg_folder(mask_folders))


def test_a_segmentation_dir_without_masks_folder_is_an_error(tmp_path):
    write_image(tmp_path / "train" / "images" / "a.png", solid(RED))
    with pytest.raises(ValueError, match=f"data.train_dir: no folder {tmp_path / 'train' / 'masks'}"):
        build_data(seg_folder(tmp_path, val=None))


def test_an_empty_images_folder_is_an_error(tmp_path):
    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "train" / "masks").mkdir()
    with pytest.raises(ValueError, match=f"data.train_dir: {tmp_path / 'train' / 'images'} is empty"):
        build_data(seg_folder(tmp_path, val=None))


@pytest.mark.parametrize(("mask", "message"), [
    (stripes_mask(16, 16, (0, 1, 255)), "masks hold 255 alongside other classes"),
    (np.zeros((16, 16, 3), np.uint8) + np.array(RED, np.uint8), "is a RGB colour image"),
    (stripes_mask(8, 16, (0, 1)), "is 16x8 but image"),
], ids=["255-with-classes", "colour-mask", "size-mismatch"])
def test_unreadable_masks_are_errors(tmp_path, mask, message):
    write_pair(tmp_path / "train", "a", solid(RED, 16, 16), stripes_mask(16, 16, (0, 1)))
    write_pair(tmp_path / "train", "b", solid(RED, 16, 16), mask)
    with pytest.raises(ValueError, match=message):
        build_data(seg_folder(tmp_path, val=None))


def test_a_val_class_no_training_mask_holds_is_an_error(mask_folders):
    write_pair(mask_folders / "val", "v9", solid(GREEN, 16, 16), stripes_mask(16, 16, (0, 7)))
    with pytest.raises(ValueError, match=r"data.val_dir: masks hold classes \[7\] that no training mask holds"):
        build_data(seg_folder(mask_folders))


def test_an_all_background_training_set_is_an_error(tmp_path):
    for i in range(2):
        write_pair(tmp_path / "train", f"{i}", solid(RED, 16, 16), np.zeros((16, 16), np.uint8))
    with pytest.raises(ValueError, match="data.train_dir: every training mask is all background"):
        build_data(seg_folder(tmp_path, val=None))


def test_hidden_files_and_folders_are_not_data(class_folders):
    write_image(class_folders / "train" / "cat" / ".ipynb_checkpoints" / "0.png", solid(RED))
    write_image(class_folders / "train" / ".trash" / "0.png", solid(RED))
    bundle = build_data(folder(class_folders))
    assert bundle.class_names == ("bird", "cat", "dog") and len(bundle.train) == 15


def test_palette_masks_give_their_indices(tmp_path):
    for i in range(2):
        write_pair(tmp_path / "train", f"{i}", solid(RED, 16, 16), stripes_mask(16, 16, (0, 1)))
        mask = Image.fromarray(stripes_mask(16, 16, (0, 2)), mode="P")
        mask.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)  # VOC-style colours
        mask.save(tmp_path / "train" / "masks" / f"{i}.png")
    bundle = build_data(seg_folder(tmp_path, val=None))
    assert bundle.num_classes == 3
    assert set(torch.unique(bundle.train[0][1]).tolist()) == {0, 2}
