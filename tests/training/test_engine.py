"""The training loop on real digits with a real (tiny) timm model, without Ray."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from tune_app.training import DataConfig, DivergedError, TrainConfig, TrainingRun, build_data


@pytest.fixture(scope="module")
def digits16():
    return build_data(DataConfig(dataset="digits", image_size=16))


def tiny_config(**overrides) -> TrainConfig:
    values = dict(model="timm/test_resnet", data=DataConfig(image_size=16), epochs=2, lr=3e-3, device="cpu")
    values.update(overrides)
    return TrainConfig(**values)


def test_a_few_batches_reduce_the_training_loss(digits16):
    run = TrainingRun(tiny_config(), data=digits16)
    before = run.evaluate()
    run.train_one_epoch(max_steps=15)
    after = run.evaluate()
    assert after["val_loss"] < before["val_loss"]
    assert 0.0 <= after["val_acc"] <= 1.0 and 0.0 <= after["val_f1"] <= 1.0


def test_epochs_report_every_metric_and_the_lr(digits16):
    run = TrainingRun(tiny_config(scheduler={"name": "step", "step_size": 1, "gamma": 0.5}), data=digits16)
    history = list(run.epochs())
    assert [m["epoch"] for m in history] == [1, 2]
    for metrics in history:
        assert {"train_loss", "val_loss", "val_acc", "val_f1", "lr", "train_throughput", "trainable_params"} <= set(metrics)
        assert all(math.isfinite(v) for v in metrics.values())
    assert [m["lr"] for m in history] == pytest.approx([3e-3, 1.5e-3])
    assert list(run.epochs()) == []  # the budget is spent


def test_two_runs_of_one_config_give_the_same_history(digits16):
    first = [m["val_loss"] for m in TrainingRun(tiny_config(epochs=1), data=digits16).epochs()]
    second = [m["val_loss"] for m in TrainingRun(tiny_config(epochs=1), data=digits16).epochs()]
    assert first == second


def test_deterministic_switches_torch_to_deterministic_kernels_and_back(digits16):
    try:
        runs = [TrainingRun(tiny_config(epochs=1, deterministic=True), data=digits16) for _ in range(2)]
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        histories = [[m["val_loss"] for m in run.epochs()] for run in runs]
        assert histories[0] == histories[1]
        TrainingRun(tiny_config(epochs=1), data=digits16)  # a fast trial after it in the same worker
        assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


@pytest.mark.slow
def test_bf16_autocast_trains_on_the_cpu():
    # 32 px, not 16: at 16 px test_resnet's last stage convolves 1x1 maps, where oneDNN's bf16
    # weight gradient on CPUs with AMX / AVX512-BF16 (torch 2.14.1) is sometimes NaN.
    data = DataConfig(image_size=32)
    run = TrainingRun(tiny_config(amp="bf16", epochs=1, data=data), data=build_data(data))
    metrics = next(run.epochs())
    assert math.isfinite(metrics["train_loss"])


def test_fp16_on_the_cpu_falls_back_to_bf16_with_a_warning(digits16):
    with pytest.warns(UserWarning, match="fp16 needs a CUDA device; using bf16"):
        run = TrainingRun(tiny_config(amp="fp16"), data=digits16)
    assert not run.scaler.is_enabled()


def test_a_diverging_loss_stops_the_run(digits16):
    run = TrainingRun(tiny_config(lr=1e30, optimizer="sgd"), data=digits16)
    with pytest.raises(DivergedError, match="training loss is nan|training loss is inf"):
        run.train_one_epoch()


def test_state_dict_loads_with_weights_only(tmp_path, digits16):
    run = TrainingRun(tiny_config(), data=digits16)
    run.train_one_epoch(max_steps=2)
    run.epoch = 1
    torch.save(run.state_dict(), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    other = TrainingRun(tiny_config(), data=digits16)
    other.load_state_dict(state)
    assert other.epoch == 1
    for a, b in zip(run.model.state_dict().values(), other.model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_the_training_package_runs_without_ray():
    import subprocess
    import sys

    code = "import sys, tune_app.training; assert not any(m == 'ray' or m.startswith('ray.') for m in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_resuming_from_a_checkpoint_ends_like_an_uninterrupted_run(tmp_path, digits16):
    config = dict(epochs=3, scheduler={"name": "onecycle"}, loss={"name": "focal", "gamma": 2.0})
    straight = [m["val_loss"] for m in TrainingRun(tiny_config(**config), data=digits16).epochs()]

    first = TrainingRun(tiny_config(**config), data=digits16)
    history = [next(first.epochs())["val_loss"]]
    torch.save(first.state_dict(), tmp_path / "state.pt")
    del first
    resumed = TrainingRun(tiny_config(**config), data=digits16)
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    history += [m["val_loss"] for m in resumed.epochs()]
    assert history == straight  # bit for bit: model, optimizer, schedule, shuffling and RNG state all restored


@pytest.mark.slow
def test_adopting_new_hyperparameters_rescales_the_schedule(digits16):
    run = TrainingRun(tiny_config(scheduler={"name": "cosine"}, epochs=4, lr=0.01, weight_decay=0.05), data=digits16)
    next(run.epochs())
    state = run.state_dict()
    faster = TrainingRun(tiny_config(scheduler={"name": "cosine"}, epochs=4, lr=0.02, weight_decay=0.1), data=digits16)
    faster.load_state_dict(state)
    faster.adopt_hyperparameters(state["config"])
    lrs = [m["lr"] for m in faster.epochs()]
    reference = [m["lr"] for m in run.epochs()]
    assert lrs == pytest.approx([2 * lr for lr in reference])  # same cosine shape, twice the height
    decays = {g["weight_decay"] for g in faster.optimizer.param_groups}
    assert decays == {0.0, 0.1}  # biases and norms keep none


def test_resuming_on_a_cached_photo_folder_keeps_the_order_and_the_augmentation(tmp_path):
    from tune_app.training.datasets import write_sample_photos

    root = write_sample_photos(tmp_path / "photos", count=48, size=(120, 90))
    data = DataConfig(dataset="folder", train_dir=str(root / "train"), val_dir=str(root / "val"), image_size=32,
                      hflip=True, scale=(0.3, 1.0), cache_dir=str(tmp_path / "cache"))
    bundle = build_data(data)
    config = dict(data=data, epochs=3, batch_size=8, scheduler={"name": "cosine"})
    straight = [(m["train_loss"], m["val_loss"]) for m in TrainingRun(tiny_config(**config), data=bundle).epochs()]

    first = TrainingRun(tiny_config(**config), data=bundle)
    history = [next(first.epochs())]
    torch.save(first.state_dict(), tmp_path / "state.pt")
    resumed = TrainingRun(tiny_config(**config), data=bundle)
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    history += list(resumed.epochs())
    assert [(m["train_loss"], m["val_loss"]) for m in history] == straight
    # a different augmentation stream would train differently: the state restored it
    other = TrainingRun(tiny_config(**config), data=bundle)
    other.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    other.augment_generator.manual_seed(12345)
    assert next(other.epochs())["train_loss"] != straight[1][0]


# ------------------------------------------------------------- data config
def photo_data(tmp_path, **overrides) -> DataConfig:
    from tune_app.training.datasets import write_sample_photos

    root = write_sample_photos(tmp_path / "photos", count=12, size=(60, 45))
    return DataConfig(**{"dataset": "folder", "train_dir": str(root / "train"), "val_dir": str(root / "val"),
                         "image_size": 16, "cache_dir": str(tmp_path / "cache"), **overrides})


def test_a_run_records_the_data_config_completed_for_its_model(tmp_path):
    import timm

    from tune_app.training.engine import build_data_for

    cfg = timm.get_pretrained_cfg("test_efficientnet")
    assert (cfg.crop_pct, cfg.interpolation) == (0.95, "bicubic")  # neither is the default (0.875, bilinear)
    config = tiny_config(model="timm/test_efficientnet", data=photo_data(tmp_path))
    bundle = build_data_for(config)
    assert (bundle.config.crop_pct, bundle.config.interpolation) == (0.95, "bicubic")
    recorded = TrainingRun(config, data=bundle).state_dict()["config"]["data"]
    assert (recorded["crop_pct"], recorded["interpolation"], recorded["mean"]) == (0.95, "bicubic", None)
    assert TrainingRun(config).state_dict()["config"]["data"] == recorded  # data the run builds itself: the same
    assert TrainConfig.from_dict(TrainingRun(config, data=bundle).state_dict()["config"]).data == bundle.config


def test_a_checkpoint_without_the_completed_data_config_still_loads(tmp_path):
    from tune_app.training.engine import build_data_for

    config = tiny_config(data=photo_data(tmp_path), scheduler={"name": "cosine"})
    bundle = build_data_for(config)
    straight = [m["val_loss"] for m in TrainingRun(config, data=bundle).epochs()]
    first = TrainingRun(config, data=bundle)
    history = [next(first.epochs())["val_loss"]]
    state = first.state_dict()
    # as written before the data config was completed where the data is built
    state["config"]["data"] = {**state["config"]["data"], "crop_pct": None, "interpolation": None}
    old = TrainConfig.from_dict(state["config"])
    assert old.data.crop_pct is None
    resumed = TrainingRun(old, data=bundle)
    resumed.load_state_dict(state)
    resumed.adopt_hyperparameters(state["config"])
    assert resumed.epoch == 1 and resumed.config.data == bundle.config
    history += [m["val_loss"] for m in resumed.epochs()]
    assert history == straight


def test_data_built_for_other_data_leaves_the_config_as_given(tmp_path, digits16):
    from tune_app.training.engine import with_built_data

    config = tiny_config(data=photo_data(tmp_path, crop_pct=0.8))
    assert with_built_data(config, digits16) is config  # another dataset
    assert with_built_data(config, build_data(dataclasses.replace(config.data, crop_pct=0.9))) is config
    made_by_hand = dataclasses.replace(digits16, config=None)
    assert TrainingRun(tiny_config(), data=made_by_hand).config == tiny_config()
