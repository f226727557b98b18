"""Model factory, pretrained weights and freezing: real models, real files, real training steps.

No test touches the network: sockets are blocked for the whole module and the hub caches
point at empty temporary folders.
"""

from __future__ import annotations

import itertools
import socket
import time
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import DataLoader

from tune_app.training.datasets import DataConfig, build_data
from tune_app.training.freeze import check_freeze_depth, freeze, stage_count, stage_plan
from tune_app.training.models import (
    MODEL_SOURCES,
    PretrainedWeightsError,
    check_model_name,
    count_parameters,
    create_model,
    output_channels,
    resolve_pretrained,
    stage_count_for,
)

SEG = "segmentation"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Empty hub caches, HF_HUB_OFFLINE=1, and any socket connection is an error."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a test tried to use the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    caches = tmp_path / "caches"
    for var, sub in (("HF_HOME", "hf"), ("TORCH_HOME", "torch")):
        (caches / sub).mkdir(parents=True)
        monkeypatch.setenv(var, str(caches / sub))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return caches


@pytest.fixture(scope="module")
def digits32():
    return build_data(DataConfig(dataset="digits", image_size=32))


def _eval_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


# ------------------------------------------------------------------ shapes
SHAPE_CASES = [
    # name, task, encoder, num_classes, in_chans, size, expected channels
    ("timm/resnet18", "classification", None, 10, 3, 32, 10),
    ("timm/test_resnet", "classification", None, 7, 1, 32, 7),
    ("torchvision/resnet18", "classification", None, 10, 1, 32, 10),
    ("torchvision/mobilenet_v3_small", "classification", None, 5, 1, 32, 5),
    ("torchvision/vit_b_16", "classification", None, 3, 3, 224, 3),  # fixed 224x224 input
    ("torchvision/lraspp_mobilenet_v3_large", SEG, None, 3, 1, 32, 3),
    ("torchvision/fcn_resnet50", SEG, None, 2, 3, 32, 1),  # binary: one sigmoid channel
    ("smp/Unet", SEG, "resnet18", 4, 3, 64, 4),
    ("smp/Unet", SEG, "test_resnet", 2, 1, 64, 1),
    ("smp/FPN", SEG, "test_resnet", 3, 1, 64, 3),
    ("smp/FPN", SEG, "tu-resnet18", 2, 3, 64, 1),
]


@pytest.mark.parametrize(
    "name, task, encoder, num_classes, in_chans, size, channels", SHAPE_CASES,
    ids=[f"{c[0]}{'-' + c[2] if c[2] else ''}-{c[3]}cls-{c[4]}ch" for c in SHAPE_CASES],
)
def test_models_return_logits_of_the_expected_shape(name, task, encoder, num_classes, in_chans, size, channels):
    model = create_model(name, num_classes, in_chans, task=task, encoder=encoder)
    out = _eval_output(model, torch.randn(2, in_chans, size, size))
    expected = (2, channels) if task == "classification" else (2, channels, size, size)
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == expected
    assert torch.isfinite(out).all()
    assert model.tune_app_info.name == name and model.tune_app_info.weights is None


def test_the_positional_call_of_the_engine_still_works():
    model = create_model("timm/test_resnet", 4, 3, False)
    assert _eval_output(model, torch.zeros(1, 3, 32, 32)).shape == (1, 4)


def test_output_channels_gives_binary_segmentation_one_channel():
    assert output_channels("classification", 2) == 2
    assert output_channels(SEG, 2) == 1
    assert output_channels(SEG, 5) == 5
    with pytest.raises(ValueError, match="counts the background"):
        output_channels(SEG, 1)
    with pytest.raises(ValueError, match="unknown task"):
        output_channels("detection", 3)


def test_torchvision_googlenet_loses_its_aux_heads():
    model = create_model("torchvision/googlenet", 3).train()
    assert model.aux1 is None and model.aux2 is None
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)  # a tensor even in training, no aux tuple


# ------------------------------------------------------------------ names
@pytest.mark.parametrize("source", sorted(MODEL_SOURCES))
def test_every_source_lists_its_names(source):
    names = MODEL_SOURCES[source].list_names()
    assert names and all(MODEL_SOURCES[source].exists(n) for n in names[:20])


def test_torchvision_lists_classification_and_segmentation_models_by_task():
    tv = MODEL_SOURCES["torchvision"]
    assert "resnet18" in tv.list_names("classification") and "resnet18" not in tv.list_names(SEG)
    assert "fcn_resnet50" in tv.list_names(SEG) and "fcn_resnet50" in tv.list_names()
    assert MODEL_SOURCES["smp"].list_names("classification") == []
    assert "Unet" in MODEL_SOURCES["smp"].list_names()


@pytest.mark.parametrize(
    "name, task, encoder, message",
    [
        ("timm/resnet81", None, None, r"unknown timm model 'resnet81'; did you mean timm/resnet18"),
        ("timm/resnet18.nope_tag", None, None, r"resnet18 has no pretrained tag 'nope_tag'; its tags: .*timm/resnet18.a1_in1k"),
        ("torchvision/resnt18", "classification", None, r"did you mean torchvision/resnet18"),
        ("smp/Unett", SEG, "resnet18", r"unknown smp model 'Unett'; did you mean smp/Unet"),
        ("timm/resnet18", SEG, None, r"use an smp model .* model.name: smp/Unet .* model.encoder: resnet18"),
        ("torchvision/resnet18", SEG, None, r"not a segmentation model; .*fcn_resnet50"),
        ("torchvision/fcn_resnet50", "classification", None, r"not a classification model"),
        ("smp/Unet", "classification", "resnet18", r"smp/Unet is a segmentation model"),
        ("smp/Unet", SEG, None, r"needs model.encoder"),
        ("smp/FPN", SEG, "resnet81", r"unknown timm encoder 'resnet81'; did you mean resnet18"),
        ("timm/resnet18", "classification", "resnet18", r"model.encoder only applies to smp"),
        ("resnet18", None, None, r"must look like <source>/<architecture>"),
        ("keras/resnet18", None, None, r"unknown model source 'keras'"),
    ],
    ids=["timm-typo", "timm-bad-tag", "torchvision-typo", "smp-typo", "timm-for-segmentation",
         "torchvision-classifier-for-segmentation", "torchvision-segmenter-for-classification",
         "smp-for-classification", "smp-without-encoder", "smp-encoder-typo", "encoder-on-timm", "no-source",
         "unknown-source"],
)
def test_check_model_name_rejects_with_a_useful_message(name, task, encoder, message):
    with pytest.raises(ValueError, match=message):
        check_model_name(name, task=task, encoder=encoder)


def test_check_model_name_accepts_known_models():
    assert check_model_name("timm/resnet18") == "timm/resnet18"  # the old one-argument call
    assert check_model_name("timm/resnet18.a1_in1k", task="classification")
    assert check_model_name("torchvision/lraspp_mobilenet_v3_large", task=SEG)
    assert check_model_name("smp/unetplusplus", task=SEG, encoder="tu-resnet18")


# ------------------------------------------------------------------ stages
STAGE_COUNTS = [
    ("timm/resnet18", "classification", None, 4),
    ("timm/test_resnet", "classification", None, 4),
    ("timm/convnext_atto", "classification", None, 4),
    ("timm/vit_tiny_patch16_224", "classification", None, 12),
    ("timm/mobilenetv3_small_050", "classification", None, 6),
    ("torchvision/resnet18", "classification", None, 4),
    ("torchvision/mobilenet_v3_small", "classification", None, 5),
    ("torchvision/efficientnet_b0", "classification", None, 7),
    ("torchvision/convnext_tiny", "classification", None, 4),
    ("torchvision/vgg11", "classification", None, 5),
    ("torchvision/vit_b_16", "classification", None, 12),
    ("torchvision/fcn_resnet50", SEG, None, 4),
    ("torchvision/lraspp_mobilenet_v3_large", SEG, None, 6),
    ("smp/Unet", SEG, "resnet18", 4),
    ("smp/FPN", SEG, "convnext_atto", 4),
]


@pytest.mark.parametrize("name, task, encoder, count", STAGE_COUNTS,
                         ids=[f"{c[0]}{'-' + c[2] if c[2] else ''}" for c in STAGE_COUNTS])
def test_stage_count_for_a_name_matches_the_model(name, task, encoder, count):
    assert stage_count_for(name, task=task, encoder=encoder) == count


@pytest.mark.parametrize("name, task, encoder", [("timm/test_resnet", "classification", None),
                                                  ("torchvision/mobilenet_v3_small", "classification", None),
                                                  ("smp/Unet", SEG, "test_resnet")])
def test_the_cheap_stage_count_equals_the_built_models(name, task, encoder):
    model = create_model(name, 3, task=task, encoder=encoder)
    assert stage_count(model) == stage_count_for(name, task=task, encoder=encoder)


def test_stage_count_for_builds_no_real_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNE_APP_CACHE", str(tmp_path))  # an empty model-facts file: the count is found, not read
    start = time.perf_counter()
    # 644M parameters: a real build takes ~10 s and 2.5 GB; its builder needs real values for its widths
    assert stage_count_for("torchvision/regnet_y_128gf") == 4
    assert time.perf_counter() - start < 5


def test_stages_come_in_forward_order_and_never_overlap_the_head():
    plan = stage_plan(create_model("timm/resnet18", 10))
    assert plan.stem[0] == "conv1.weight"
    assert [s[0].split(".")[0] for s in plan.stages] == ["layer1", "layer2", "layer3", "layer4"]
    assert set(plan.head) == {"fc.weight", "fc.bias"}
    seg = stage_plan(create_model("smp/Unet", 3, task=SEG, encoder="test_resnet"))
    assert all(n.startswith("encoder.") for s in seg.stages for n in s)
    assert seg.head and not any(n.startswith("encoder.") for n in seg.head)


@pytest.mark.parametrize("depth, message", [
    (7, r"freeze_depth 7 is more than timm/resnet18's 4 stages"),
    (-1, r"freeze_depth must be an integer >= 0 or 'all', got -1"),
    ("some", r"got 'some'"),
    (True, r"got True"),
])
def test_freeze_rejects_a_depth_the_model_does_not_have(depth, message):
    model = create_model("timm/resnet18", 10)
    with pytest.raises(ValueError, match=message):
        freeze(model, depth)
    with pytest.raises(ValueError, match=message):
        check_freeze_depth(depth, stage_count_for("timm/resnet18"), "timm/resnet18")


@pytest.mark.parametrize("name, task, encoder", [("timm/resnet18", "classification", None),
                                                  ("torchvision/resnet18", "classification", None),
                                                  ("timm/vit_tiny_patch16_224", "classification", None),
                                                  ("torchvision/mobilenet_v3_small", "classification", None),
                                                  ("smp/Unet", SEG, "resnet18")])
def test_trainable_parameters_shrink_with_every_frozen_stage(name, task, encoder):
    def build() -> nn.Module:
        with torch.device("meta"):  # only requires_grad matters here: skip allocating and initializing
            return create_model(name, 10, task=task, encoder=encoder)

    counts = []
    for depth in range(stage_count_for(name, task=task, encoder=encoder) + 1):
        model = build()
        freeze(model, depth)
        counts.append(count_parameters(model, trainable_only=True))
    assert all(later < earlier for earlier, later in itertools.pairwise(counts)), counts
    model = build()
    freeze(model, "all")
    head = set(stage_plan(model).head)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if n in head}
    assert 0 < count_parameters(model, trainable_only=True) <= counts[-1]


def test_frozen_batch_norm_stays_in_eval_mode_through_train():
    model = create_model("torchvision/resnet18", 10)
    freeze(model, 1)
    model.train()
    assert type(model.bn1).__name__ == "FrozenBatchNorm2d"
    assert type(model.layer1[0].bn1).__name__ == "FrozenBatchNorm2d"
    assert isinstance(model.layer2[0].bn1, nn.BatchNorm2d) and model.layer2[0].bn1.training


def test_a_frozen_models_state_dict_loads_into_an_unfrozen_one_and_back():
    # a resumed or PBT-exploited trial may freeze a different depth than the checkpoint's
    frozen, plain = create_model("timm/test_resnet", 10), create_model("timm/test_resnet", 10)
    freeze(frozen, "all")
    plain.load_state_dict(frozen.state_dict())
    frozen.load_state_dict(create_model("timm/test_resnet", 10).state_dict())


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _train_steps(model: nn.Module, data, steps: int) -> None:
    loader = DataLoader(data.train, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-2)
    model.train()
    for step, (images, labels) in enumerate(loader):
        if step == steps:
            break
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], names) -> set[str]:
    return {n for n in names if n in after and not n.endswith("num_batches_tracked") and not torch.equal(before[n], after[n])}


@pytest.mark.parametrize("name", ["timm/resnet18", "torchvision/resnet18"])
def test_training_leaves_frozen_stages_and_their_bn_statistics_untouched(name, digits32):
    model = create_model(name, digits32.num_classes)
    plan = stage_plan(model)
    freeze(model, 2)
    before = _snapshot(model)
    _train_steps(model, digits32, steps=8)
    after = _snapshot(model)
    frozen = [*plan.stem, *plan.stages[0], *plan.stages[1]]
    assert any(n.endswith("running_mean") for n in frozen)
    assert _changed(before, after, frozen) == set()
    for stage in plan.stages[2:]:  # every unfrozen stage learned, and its BN statistics moved
        assert any(n.endswith("conv1.weight") for n in _changed(before, after, stage))
        assert any(n.endswith("running_mean") for n in _changed(before, after, stage))
    assert _changed(before, after, plan.head) == set(plan.head)


@pytest.mark.parametrize("name", ["timm/resnet18", "torchvision/resnet18"])
def test_freezing_all_still_trains_the_head(name, digits32):
    model = create_model(name, digits32.num_classes)
    plan = stage_plan(model)
    freeze(model, "all")
    before = _snapshot(model)
    _train_steps(model, digits32, steps=3)
    after = _snapshot(model)
    assert _changed(before, after, plan.head) == set(plan.head)
    assert _changed(before, after, [n for n in after if n not in plan.head]) == set()


def test_without_bn_eval_frozen_batch_norm_still_updates_its_statistics(digits32):
    model = create_model("timm/test_resnet", digits32.num_classes)
    freeze(model, "all", bn_eval=False)
    before = _snapshot(model)
    _train_steps(model, digits32, steps=2)
    changed = _changed(before, model.state_dict(), before)
    assert changed and all(n.endswith(("running_mean", "running_var")) or n.startswith("fc.") for n in changed)


# ------------------------------------------------------------------ pretrained files
@pytest.fixture(scope="module")
def saved_test_resnet(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 1000-class timm/test_resnet with trained-looking weights, saved in several layouts."""
    torch.manual_seed(1)
    model = timm.create_model("test_resnet", num_classes=1000)
    with torch.no_grad():  # BN statistics away from their defaults, so a copy is visible
        for name, buf in model.named_buffers():
            if "running" in name:
                buf.uniform_(0.5, 1.5)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    folder = tmp_path_factory.mktemp("weights")
    save_file(state, folder / "plain.safetensors")
    torch.save(state, folder / "plain.pth")
    torch.save({"epoch": 3, "state_dict": state}, folder / "nested_state_dict.pth")
    torch.save({"model": state, "optimizer": {"lr": 0.1}}, folder / "nested_model.pt")
    return {"state": state, "folder": folder}


def _backbone_equals(model: nn.Module, state: dict[str, torch.Tensor], skip: tuple[str, ...] = ("fc.",)) -> None:
    own = model.state_dict()
    for key, value in state.items():
        if not key.startswith(skip):
            assert torch.equal(own[key], value), key


@pytest.mark.parametrize("filename", ["plain.safetensors", "plain.pth", "nested_state_dict.pth", "nested_model.pt"])
def test_a_weights_file_fills_the_backbone_and_leaves_a_fresh_head(filename, saved_test_resnet):
    torch.manual_seed(0)
    fresh = create_model("timm/test_resnet", 10)
    torch.manual_seed(0)
    model = create_model("timm/test_resnet", 10, pretrained=saved_test_resnet["folder"] / filename)
    _backbone_equals(model, saved_test_resnet["state"])
    assert torch.equal(model.fc.weight, fresh.fc.weight) and model.fc.weight.shape == (10, model.fc.in_features)
    report = model.tune_app_info.weights
    assert report.loaded == len(saved_test_resnet["state"]) - 2
    assert set(report.skipped) == {"fc.weight", "fc.bias"} and report.fresh == () and report.adapted == ()
    assert "skipped 2" in report.summary()


def test_a_weights_file_adapts_the_first_conv_to_one_input_channel(saved_test_resnet):
    state = saved_test_resnet["state"]
    model = create_model("timm/test_resnet", 10, in_chans=1, pretrained=saved_test_resnet["folder"] / "plain.pth")
    torch.testing.assert_close(model.conv1[0].weight, state["conv1.0.weight"].sum(dim=1, keepdim=True))
    _backbone_equals(model, {k: v for k, v in state.items() if k != "conv1.0.weight"})
    assert model.tune_app_info.weights.adapted == ("conv1.0.weight",)


def test_a_timm_classifier_file_fills_an_smp_encoder(saved_test_resnet):
    model = create_model("smp/Unet", 3, pretrained=saved_test_resnet["folder"] / "plain.safetensors",
                         task=SEG, encoder="test_resnet")
    own = model.state_dict()
    for key, value in saved_test_resnet["state"].items():
        if not key.startswith("fc."):
            assert torch.equal(own[f"encoder.model.{key}"], value), key
    assert model.tune_app_info.weights.loaded == len(saved_test_resnet["state"]) - 2


def test_an_smp_encoder_finds_weights_under_timms_flattened_names(tmp_path):
    # features_only nets rename convnext's stem.0 / stages.0 to stem_0 / stages_0
    state = timm.create_model("test_convnext").state_dict()
    torch.save(state, tmp_path / "convnext.pth")
    model = create_model("smp/FPN", 2, in_chans=1, pretrained=tmp_path / "convnext.pth", task=SEG, encoder="test_convnext")
    assert torch.equal(model.encoder.model.stages_1.downsample[1].weight, state["stages.1.downsample.1.weight"])
    assert model.tune_app_info.weights.adapted == ("encoder.model.stem_0.weight",)


def test_torchvision_files_load_into_torchvision_and_timm_resnets(tmp_path):
    state = torchvision.models.resnet18(num_classes=1000).state_dict()
    torch.save(state, tmp_path / "tv_resnet18.pth")
    for name in ("torchvision/resnet18", "timm/resnet18"):  # timm's resnet keeps torchvision's names
        model = create_model(name, 7, pretrained=tmp_path / "tv_resnet18.pth")
        _backbone_equals(model, state)


def test_a_classifier_file_fills_a_torchvision_segmentation_backbone(tmp_path):
    state = torchvision.models.mobilenet_v3_large().state_dict()
    torch.save(state, tmp_path / "mnv3.pth")
    model = create_model("torchvision/lraspp_mobilenet_v3_large", 3, pretrained=tmp_path / "mnv3.pth", task=SEG)
    assert torch.equal(model.model.backbone.get_submodule("4.block.0.0").weight, state["features.4.block.0.0.weight"])
    assert model.tune_app_info.weights.fresh == ()


def test_a_file_of_another_architecture_is_rejected_clearly(saved_test_resnet):
    with pytest.raises(PretrainedWeightsError, match=r"does not fit timm/test_convnext: only 0 of the model's \d+ "
                                                     r"backbone tensors .* another architecture"):
        create_model("timm/test_convnext", 10, pretrained=saved_test_resnet["folder"] / "plain.pth")


def test_a_pth_that_needs_arbitrary_unpickling_is_rejected(tmp_path, saved_test_resnet):
    torch.save({"state_dict": saved_test_resnet["state"], "config": Path("/etc")}, tmp_path / "pickled.pth")
    with pytest.raises(PretrainedWeightsError, match=r"pickled Python objects .* weights_only"):
        create_model("timm/test_resnet", 10, pretrained=tmp_path / "pickled.pth")


def test_a_file_without_a_state_dict_is_rejected(tmp_path):
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pth")
    with pytest.raises(PretrainedWeightsError, match="holds no state dict"):
        create_model("timm/test_resnet", 10, pretrained=tmp_path / "meta.pth")


# ------------------------------------------------------------------ pretrained: true
@pytest.mark.parametrize("name, encoder", [("timm/resnet18", None), ("torchvision/resnet18", None),
                                           ("torchvision/fcn_resnet50", None), ("smp/Unet", "resnet18")])
def test_true_offline_with_an_empty_cache_says_how_to_pass_a_file(name, encoder):
    with pytest.raises(PretrainedWeightsError) as info:
        resolve_pretrained(name, True, encoder)
    message = str(info.value)
    assert "found in the cache" in message and "HF_HUB_OFFLINE" in message
    assert "model.pretrained: /path/to/weights.safetensors" in message and ".pth" in message
    assert isinstance(info.value, ValueError)


def test_create_model_with_true_offline_fails_the_same_way():
    with pytest.raises(PretrainedWeightsError, match="found in the cache"):
        create_model("timm/test_resnet", 10, pretrained=True)


def test_true_finds_timm_weights_in_the_hub_cache(offline, saved_test_resnet):
    # the Hugging Face cache layout, as hf_hub_download leaves it
    repo = offline / "hf" / "hub" / "models--timm--test_resnet.r160_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    save_file(saved_test_resnet["state"], snapshot / "model.safetensors")

    path = resolve_pretrained("timm/test_resnet", True)
    assert Path(path) == snapshot / "model.safetensors"
    model = create_model("timm/test_resnet", 10, pretrained=True)
    _backbone_equals(model, saved_test_resnet["state"])
    smp_model = create_model("smp/Unet", 2, pretrained=path, task=SEG, encoder="test_resnet")
    assert smp_model.tune_app_info.weights.loaded == len(saved_test_resnet["state"]) - 2


def test_true_finds_torchvision_weights_in_the_torch_hub_cache(offline):
    url = torchvision.models.get_model_weights("mobilenet_v3_small").DEFAULT.url
    state = torchvision.models.mobilenet_v3_small().state_dict()
    cached = offline / "torch" / "hub" / "checkpoints" / Path(url).name
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    assert resolve_pretrained("torchvision/mobilenet_v3_small", True) == str(cached)
    model = create_model("torchvision/mobilenet_v3_small", 4, in_chans=1, pretrained=True)
    _backbone_equals(model, {k: v for k, v in state.items() if k != "features.0.0.weight"}, skip=("classifier.3.",))
    assert model.tune_app_info.weights.adapted == ("features.0.0.weight",)


def test_resolve_pretrained_passes_false_and_makes_paths_absolute(tmp_path, monkeypatch, saved_test_resnet):
    assert resolve_pretrained("timm/resnet18", False) is False
    assert resolve_pretrained("timm/resnet18", None) is False
    monkeypatch.chdir(saved_test_resnet["folder"])
    resolved = resolve_pretrained("timm/resnet18", "plain.pth")
    assert resolved == str(saved_test_resnet["folder"] / "plain.pth") and Path(resolved).is_absolute()
    with pytest.raises(PretrainedWeightsError, match="no such file: .*missing.safetensors"):
        resolve_pretrained("timm/resnet18", tmp_path / "missing.safetensors")


def test_count_parameters_counts_all_or_only_trainable():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    model[0].weight.requires_grad_(False)
    assert count_parameters(model) == 6 + 2 + 2 + 1
    assert count_parameters(model, trainable_only=True) == 2 + 2 + 1


def test_an_exported_model_directory_is_pretrained_weights_with_its_own_normalization(tmp_path):
    from tune_app.experiment.export import data_summary, write_model
    from tune_app.training.config import TrainConfig
    from tune_app.training.engine import data_config

    config = TrainConfig(model="timm/test_resnet", data=DataConfig(image_size=16))
    data = data_summary(config, build_data(config.data))
    data["preprocessing"] = {**data["preprocessing"], "mean": [0.2] * 3, "std": [0.3] * 3}
    source = create_model("timm/test_resnet", 10)
    write_model(tmp_path / "best_model", source.state_dict(), config, data,
                {"trial_id": "t", "epoch": 1, "metric": "val_acc", "metric_value": 0.5})
    model = create_model("timm/test_resnet", 10, pretrained=tmp_path / "best_model")
    assert model.tune_app_info.weights.loaded == len(source.state_dict())  # the head too: same classes
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))
    again = TrainConfig(model="timm/test_resnet", pretrained=str(tmp_path / "best_model"), data=config.data)
    assert (data_config(again).mean, data_config(again).std) == ((0.2,) * 3, (0.3,) * 3)
