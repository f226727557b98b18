"""best_model/: loadable anywhere, reproducing the best trial's validation score, from every model source."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml

from tune_app.cli import main
from tune_app.experiment.checkpoints import write_checkpoint
from tune_app.experiment.export import MODEL_DATA_FILE, data_summary, export_best_model, write_model
from tune_app.experiment.location import Location
from tune_app.training import DataConfig, TrainConfig, TrainingRun, build_data
from tune_app.training.datasets import write_sample_photos
from tune_app.training.engine import build_data_for
from tune_app.training.models import create_model

# A fresh Python with plain timm, no tune_app: rebuild the digits validation split as tune-app's
# digits dataset makes it (scaled to [0, 1], resized bilinearly, stratified 20 % with the fixed
# split seed 0), prepare it as config.json says, load the model as the README says, score it.
REPRODUCE = r'''
import json, sys
import numpy as np, torch, torch.nn.functional as F, timm
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

model_dir = sys.argv[1]
config = json.load(open(f"{model_dir}/config.json"))
cfg, n = config["pretrained_cfg"], config["num_classes"]
model = timm.create_model(config["architecture"], pretrained=True, num_classes=n,
                          pretrained_cfg_overlay=dict(file=f"{model_dir}/model.safetensors", num_classes=n)).eval()
same = timm.create_model(f"local-dir:{model_dir}", pretrained=True).eval()

digits = load_digits()
images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
images = F.interpolate(images, size=tuple(cfg["input_size"][1:]), mode=cfg["interpolation"], align_corners=False)
_, val = train_test_split(np.arange(len(digits.target)), test_size=0.2, stratify=digits.target, random_state=0)
val = np.sort(val)
mean, std = (torch.tensor(cfg[k]).view(-1, 1, 1) for k in ("mean", "std"))
x = (images[val].expand(-1, cfg["input_size"][0], -1, -1) - mean) / std  # crop_pct 1.0: nothing cropped
labels = torch.from_numpy(digits.target[val])

torch.set_num_threads(1)  # as each trial evaluated: the same sums in the same order
batch, correct = config["config"]["batch_size"], 0
with torch.inference_mode():
    for i in range(0, len(val), batch):
        logits = model(x[i:i + batch])
        assert torch.equal(logits, same(x[i:i + batch]))
        correct += (logits.argmax(1) == labels[i:i + batch]).sum().item()
assert "tune_app" not in sys.modules
print(repr(correct / len(val)))
'''


def test_the_exported_model_reproduces_the_best_val_acc_in_plain_timm(asha_sweep):
    assert asha_sweep.returncode == 0, asha_sweep.stdout
    model_dir = asha_sweep.experiment / "best_model"
    config = json.loads((model_dir / "config.json").read_text())
    results = pd.read_csv(asha_sweep.experiment / "results.csv").set_index("trial_id")
    best = results["val_acc"].idxmax()
    assert (config["trial_id"], config["metric"], config["source"], config["architecture"]) == (
        best, "val_acc", "timm", "test_resnet")
    assert config["metric_value"] == results.loc[best, "val_acc"]
    assert config["label_names"] == [str(d) for d in range(10)] and config["num_classes"] == 10
    assert config["pretrained_cfg"] == {"input_size": [3, 16, 16], "mean": [0.5] * 3, "std": [0.5] * 3,
                                        "interpolation": "bilinear", "crop_pct": 1.0, "crop_mode": "center",
                                        "num_classes": 10}
    assert config["config"]["lr"] == results.loc[best, "lr"]
    out = subprocess.run([sys.executable, "-c", REPRODUCE, str(model_dir)], capture_output=True, text=True,
                         timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})  # no PYTHONPATH: no tune_app
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip()) == results.loc[best, "val_acc"]


def test_export_writes_another_kept_trial_and_refuses_one_that_kept_nothing(asha_sweep, tmp_path, capsys):
    results = pd.read_csv(asha_sweep.experiment / "results.csv").sort_values("val_acc", ascending=False,
                                                                             kind="stable")
    second, last = results["trial_id"].iloc[1], results["trial_id"].iloc[-1]
    assert main(["export", str(asha_sweep.experiment), "--trial", second, "--out", str(tmp_path / "second")]) == 0
    config = json.loads((tmp_path / "second" / "config.json").read_text())
    assert config["trial_id"] == second and config["metric_value"] == results.iloc[1]["val_acc"]
    assert main(["export", str(asha_sweep.experiment), "--trial", last, "--out", str(tmp_path / "last")]) == 2
    assert "no checkpoint with weights left" in capsys.readouterr().err
    assert main(["export", str(asha_sweep.experiment), "--trial", "nosuchid"]) == 2
    assert "--trial: no trial 'nosuchid'" in capsys.readouterr().err


# The README's lines for torchvision and smp ("Using the best model"), in a fresh Python.
LOAD_OTHERS = r'''
import json, sys
import torch, torchvision, segmentation_models_pytorch as smp
from safetensors.torch import load_file

for name in sys.argv[1:]:
    model_dir = f"{name}/best_model"
    config = json.load(open(f"{model_dir}/config.json"))
    n = config["num_classes"]
    if config["source"] == "torchvision" and config["task"] == "classification":
        model = torchvision.models.get_model(config["architecture"], weights=None, num_classes=n)
    elif config["source"] == "torchvision":
        model = torchvision.models.get_model(config["architecture"], weights=None, weights_backbone=None,
                                             num_classes=n, aux_loss=False)
    else:
        model = smp.create_model(config["architecture"], encoder_name="tu-" + config["encoder"],
                                 encoder_weights=None, classes=n)
    model.load_state_dict(load_file(f"{model_dir}/model.safetensors"))
    model.eval()
    expected = torch.load(f"{name}/expected.pt", weights_only=True)
    with torch.inference_mode():
        out = model(expected["input"])
    out = out["out"] if isinstance(out, dict) else out
    assert torch.allclose(out, expected["output"], atol=1e-5), name
assert "tune_app" not in sys.modules
print("ok")
'''


@pytest.mark.slow
@pytest.mark.parametrize("names", [[("torchvision/mobilenet_v3_small", "classification", None),
                                    ("torchvision/lraspp_mobilenet_v3_large", "segmentation", None),
                                    ("smp/Unet", "segmentation", "test_resnet")]])
def test_torchvision_and_smp_exports_load_as_the_readme_says(tmp_path, names):
    folders = []
    for model_name, task, encoder in names:
        dataset = "digits" if task == "classification" else "shapes"
        config = TrainConfig(model=model_name, encoder=encoder, data=DataConfig(dataset=dataset, task=task,
                                                                                   image_size=32))
        bundle = build_data(config.data)
        model = create_model(model_name, bundle.num_classes, task=task, encoder=encoder).eval()
        folder = tmp_path / model_name.replace("/", "_")
        write_model(folder / "best_model", model.state_dict(), config, data_summary(config, bundle),
                    {"trial_id": "t", "epoch": 1, "metric": "val_acc", "metric_value": 0.5})
        torch.manual_seed(0)
        x = torch.randn(2, 3, 32, 32)
        with torch.inference_mode():
            torch.save({"input": x, "output": model(x)}, folder / "expected.pt")
        folders.append(str(folder))
    out = subprocess.run([sys.executable, "-c", LOAD_OTHERS, *folders], capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert out.returncode == 0, out.stderr


def one_trial_experiment(directory, config):
    """An experiment of one trial with one checkpoint, laid out as a sweep leaves it (no Ray)."""
    trial = directory / "train_trial_abc_00000_0_2026-01-01_00-00-00"
    trial.mkdir(parents=True)
    (directory / "spec.yaml").write_text(yaml.safe_dump({"train": {"metric": "val_acc", "mode": "max",
                                                                   "epochs": config.epochs}}))
    (trial / "params.json").write_text(json.dumps({"lr": config.lr}))
    (trial / "result.json").write_text(json.dumps({"trial_id": "abc", "epoch": 1, "val_acc": 0.5}) + "\n")
    run = TrainingRun(config, data=build_data_for(config))
    write_checkpoint(trial / "checkpoint_000000", {**run.state_dict(), "epoch": 1}, {"epoch": 1, "val_acc": 0.5})
    return directory


def test_the_exported_config_holds_the_data_config_completed_for_the_model(tmp_path):
    photos = write_sample_photos(tmp_path / "photos", count=12, size=(60, 45))
    data = DataConfig(dataset="folder", train_dir=str(photos / "train"), val_dir=str(photos / "val"), image_size=16,
                      cache_dir=str(tmp_path / "cache"))
    config = TrainConfig(model="timm/test_efficientnet", data=data, epochs=1, device="cpu")  # 0.95, bicubic
    framing = {"crop_pct": 0.95, "interpolation": "bicubic"}
    summary = data_summary(config, build_data_for(config))
    assert {k: summary["preprocessing"][k] for k in framing} == framing
    experiment = one_trial_experiment(tmp_path / "experiment", config)

    export_best_model(Location.open(str(experiment)), out=tmp_path / "built")  # no data.json: built again
    (experiment / MODEL_DATA_FILE).write_text(json.dumps(summary))  # as a sweep writes it when it starts
    export_best_model(Location.open(str(experiment)))
    for folder in (tmp_path / "built", experiment / "best_model"):
        document = json.loads((folder / "config.json").read_text())
        assert {k: document["pretrained_cfg"][k] for k in framing} == framing
        assert {k: document["config"]["data"][k] for k in framing} == framing
        assert document["config"]["model"] == "timm/test_efficientnet" and document["trial_id"] == "abc"
