"""tune-app predict: an exported model on image files and folders, with the preprocessing of its config.json."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tune_app.cli import main
from tune_app.experiment.export import data_summary, write_model
from tune_app.training import DataConfig, TrainConfig, build_data
from tune_app.training.models import create_model


@pytest.fixture(scope="module")
def digit_images(tmp_path_factory):
    """A folder of 40 digits as 8x8 grayscale PNGs (in class sub-folders, as photos often are)."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("digits")
    digits = load_digits()
    for i in range(40):
        folder = root / str(digits.target[i])
        folder.mkdir(exist_ok=True)
        Image.fromarray((digits.images[i] * 255 / 16).round().astype(np.uint8), mode="L").save(folder / f"{i}.png")
    return root


@pytest.mark.ray
def test_predict_on_a_folder_gives_the_classes_plain_timm_gives(asha_sweep, digit_images, tmp_path):
    import timm
    from timm.data import create_transform, resolve_data_config

    model_dir = asha_sweep.experiment / "best_model"
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(model_dir), str(digit_images), "--top", "3", "--out", str(out),
                 "--batch-size", "16"]) == 0
    table = pd.read_csv(out, dtype={"label_1": str, "label_2": str, "label_3": str})
    assert list(table.columns) == ["path", "label_1", "prob_1", "label_2", "prob_2", "label_3", "prob_3"]
    assert len(table) == 40 and (table["prob_1"] >= table["prob_2"]).all()

    # The reference: plain timm, timm's own evaluation transform from the config, one image at a time.
    model = timm.create_model(f"local-dir:{model_dir}", pretrained=True).eval()
    transform = create_transform(**resolve_data_config({}, model=model))
    labels = json.loads((model_dir / "config.json").read_text())["label_names"]
    with torch.inference_mode():
        expected = [labels[model(transform(Image.open(p).convert("RGB"))[None]).argmax().item()]
                    for p in table["path"]]
    assert table["label_1"].tolist() == expected


def test_segmentation_writes_masks_of_each_image_size_next_to_out(tmp_path, capsys):
    config = TrainConfig(model="smp/Unet", encoder="test_resnet",
                         data=DataConfig(dataset="shapes", task="segmentation", image_size=32))
    bundle = build_data(config.data)
    model = create_model(config.model, bundle.num_classes, task="segmentation", encoder="test_resnet")
    write_model(tmp_path / "model", model.state_dict(), config, data_summary(config, bundle),
                {"trial_id": "t", "epoch": 1, "metric": "val_dice", "metric_value": 0.5})
    images = tmp_path / "images"
    images.mkdir()
    for i, size in enumerate([(40, 30), (64, 64)]):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(
            images / f"scene{i}.jpg")
    out = tmp_path / "out" / "shapes.csv"
    assert main(["predict", str(tmp_path / "model"), str(images), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["path", "mask", "share_background", "share_circle", "share_square",
                                   "share_triangle"]
    for row, size in zip(table.itertuples(), [(40, 30), (64, 64)]):
        mask = Image.open(row.mask)
        assert mask.size == size and mask.mode == "L" and np.asarray(mask).max() < 4
        assert row.mask.startswith(str(tmp_path / "out" / "shapes_masks"))
    assert np.allclose(table.filter(like="share_").sum(axis=1), 1.0)
    assert main(["predict", str(tmp_path / "model"), str(images)]) == 2  # masks need somewhere to go
    assert "--out: segmentation writes its masks" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export") / "best_model"
    config = TrainConfig(model="timm/test_resnet", data=DataConfig(image_size=16))
    bundle = build_data(config.data)
    write_model(folder, create_model(config.model, 10).state_dict(), config, data_summary(config, bundle),
                {"trial_id": "t", "epoch": 1, "metric": "val_acc", "metric_value": 0.5})
    return folder


@pytest.mark.parametrize(("case", "fragment"), [
    ("text_file", "PATH: {path} is not an image PIL can read"),
    ("empty_folder", "PATH: {path} holds no images"),
    ("missing", "PATH: no such file or directory: {path}"),
    ("no_config", "MODEL_DIR: {model} holds no config.json"),
    ("bad_top", "--top: must be >= 1, got 0"),
])
def test_bad_input_is_a_clear_error_with_exit_code_2(tiny_export, digit_images, tmp_path, capsys, case, fragment):
    model, path, extra = tiny_export, digit_images, []
    if case == "text_file":
        path = tmp_path / "notes.png"
        path.write_text("not an image")
    elif case == "empty_folder":
        path = tmp_path / "empty"
        (path / "sub").mkdir(parents=True)
        (path / "sub" / "notes.txt").write_text("no images here")
    elif case == "missing":
        path = tmp_path / "nowhere"
    elif case == "no_config":
        model = tmp_path
    else:
        extra = ["--top", "0"]
    assert main(["predict", str(model), str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert fragment.format(path=path, model=model) in err and "Traceback" not in err


def test_an_image_and_its_exif_rotated_twin_get_the_same_prediction(tmp_path):
    config = TrainConfig(model="timm/test_resnet", data=DataConfig(dataset="digits", image_size=32))
    bundle = build_data(config.data)
    torch.manual_seed(0)
    model = create_model(config.model, bundle.num_classes)
    write_model(tmp_path / "model", model.state_dict(), config, data_summary(config, bundle),
                {"trial_id": "t", "epoch": 1, "metric": "val_acc", "metric_value": 0.5})
    yy, xx = np.mgrid[0:90, 0:120]
    upright = np.stack([xx * 2, yy * 2, (xx * yy) % 255], -1).astype(np.uint8)  # nothing symmetric about it
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(upright).save(images / "a_upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view": stored turned the other way
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))).save(images / "b_twin.png", exif=exif)
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))).save(images / "c_turned.png")  # no tag: turned
    assert main(["predict", str(tmp_path / "model"), str(images), "--top", "10", "--out", str(tmp_path / "p.csv")]) == 0
    table = pd.read_csv(tmp_path / "p.csv", dtype=str)
    probs = [{row[f"label_{k}"]: float(row[f"prob_{k}"]) for k in range(1, 11)} for _, row in table.iterrows()]
    gap = [max(abs(p[label] - probs[0][label]) for label in p) for p in probs]
    assert table["label_1"][0] == table["label_1"][1] and gap[1] < 1e-6
    assert gap[2] > 1e-4  # turned without the tag, the untrained model's output moves: orientation reaches it
