"""Classify or segment image files with an exported model (``tune-app predict``).

The model directory is what ``tune-app export`` wrote (``config.json`` and
``model.safetensors``); its ``pretrained_cfg`` says how an image is prepared, as the
trials' validation prepared it (:func:`eval_transform`). Classification: the shorter side
resized to ``floor(size / crop_pct)``, the centre cropped to ``size``, normalized.
Segmentation: the whole image resized to the input size (``crop_mode: squash``), and the
predicted mask resized back to the image's own size (nearest).

Images are read in batches, on the first GPU when there is one. No Ray here.

Example:
    >>> table = predict("tune_results/quickstart/best_model", ["photos/"], top=3)  # doctest: +SKIP
    >>> table.columns.tolist()  # doctest: +SKIP
    ['path', 'label_1', 'prob_1', 'label_2', 'prob_2', 'label_3', 'prob_3']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..errors import SpecError
from ..training.datasets import stored_side
from ..training.datasets.imaging import IMAGE_EXTENSIONS, INTERPOLATIONS, decode, frame, missing_plugin
from ..training.engine import resolve_device
from ..training.metrics import predictions
from ..training.models import MODEL_SOURCES, create_model, split_model_name
from ..training.weights import EXPORTED_CONFIG, PretrainedWeightsError, load_weights


@dataclass
class ExportedModel:
    """An exported model, loaded: the network in eval mode and what its ``config.json`` says."""

    model: nn.Module
    config: dict[str, Any]
    device: torch.device

    @property
    def task(self) -> str:
        return self.config.get("task", "classification")

    @property
    def labels(self) -> list[str]:
        return [str(name) for name in self.config["label_names"]]

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.config["pretrained_cfg"]


def load_exported(model_dir: str | Path, device: str = "auto") -> ExportedModel:
    """Build the model ``config.json`` describes and load ``model.safetensors`` into it, every tensor."""
    model_dir = Path(model_dir)
    path = model_dir / EXPORTED_CONFIG
    if not path.is_file():
        raise SpecError([("MODEL_DIR", f"{model_dir} holds no {EXPORTED_CONFIG}: give a directory tune-app export "
                                       f"wrote (an experiment's best_model/)")])
    try:
        config = json.loads(path.read_text())
        name, task, labels = config["model"], config.get("task", "classification"), config["label_names"]
        missing = [key for key in ("input_size", "mean", "std") if key not in config["pretrained_cfg"]]
    except (ValueError, KeyError, TypeError) as exc:
        missing = [str(exc)]
    if missing:
        raise SpecError([("MODEL_DIR", f"{path} is not the config.json of an exported model: "
                                       f"{', '.join(missing)} is missing or malformed")])
    source, _ = split_model_name(name)
    model = create_model(name, len(labels), int(config.get("in_chans", 3)), task=task, encoder=config.get("encoder"))
    try:  # every tensor, the head included: a partial load would predict garbage
        load_weights(model, model_dir, renames=MODEL_SOURCES[source].load_renames, min_fraction=1.0, label=name)
    except PretrainedWeightsError as exc:
        raise SpecError([("MODEL_DIR", str(exc))]) from None
    target = resolve_device(device)
    return ExportedModel(model.to(target).eval(), config, target)


def find_images(paths: Sequence[str | Path]) -> list[Path]:
    """The image files named, and those under the folders named (recursively, hidden ones skipped)."""
    from PIL import Image, UnidentifiedImageError

    found: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            images = sorted(p for p in given.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                            and not any(part.startswith(".") for part in p.relative_to(given).parts))
            if not images:
                raise SpecError([("PATH", f"{given} holds no images ({', '.join(IMAGE_EXTENSIONS)})")])
            found += images
        elif given.is_file() and missing_plugin([given]):
            found.append(given)  # reported with the others below
        elif given.is_file():
            try:
                with Image.open(given):
                    pass
            except (UnidentifiedImageError, OSError):
                raise SpecError([("PATH", f"{given} is not an image PIL can read (give image files or folders of "
                                          f"them: {', '.join(IMAGE_EXTENSIONS)})")]) from None
            found.append(given)
        else:
            raise SpecError([("PATH", f"no such file or directory: {given}")])
    problem = missing_plugin(found)
    if problem:
        raise SpecError([("PATH", problem)])
    return found


def predict(model_dir: str | Path | ExportedModel, paths: Sequence[str | Path], *, top: int = 5,
            out: str | Path | None = None, batch_size: int = 32, device: str = "auto") -> pd.DataFrame:
    """Predict every image: one row each, the ``top`` classes with their probabilities (classification)
    or the mask file and each class's share of the pixels (segmentation).

    Segmentation writes each mask as a PNG of class indices (0/255 for one foreground class)
    into ``<out stem>_masks/`` next to ``out``, which it therefore needs. ``out`` is also
    where the table goes as CSV.
    """
    exported = model_dir if isinstance(model_dir, ExportedModel) else load_exported(model_dir, device)
    for flag, value in (("--top", top), ("--batch-size", batch_size)):
        if value < 1:
            raise SpecError([(flag, f"must be >= 1, got {value}")])
    if exported.task == "segmentation" and out is None:
        raise SpecError([("--out", "segmentation writes its masks next to the table: give --out FILE.csv")])
    images = find_images(paths)
    loader = DataLoader(_Images(images, exported.preprocessing, exported.task), batch_size=batch_size,
                        num_workers=0, collate_fn=_collate)
    if exported.task == "segmentation":
        table = _segment(exported, loader, images, Path(out).with_name(Path(out).stem + "_masks"))
    else:
        table = _classify(exported, loader, images, min(top, len(exported.labels)))
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
    return table


@torch.inference_mode()
def _classify(exported: ExportedModel, loader: DataLoader, images: list[Path], top: int) -> pd.DataFrame:
    rows = []
    for batch, _ in loader:
        probs = torch.softmax(exported.model(batch.to(exported.device)).float(), dim=1)
        values, indices = probs.topk(top, dim=1)
        for value, index in zip(values.tolist(), indices.tolist()):
            row: dict[str, Any] = {}
            for rank, (p, i) in enumerate(zip(value, index), 1):
                row[f"label_{rank}"], row[f"prob_{rank}"] = exported.labels[i], p
            rows.append(row)
    return pd.DataFrame([{"path": str(path), **row} for path, row in zip(images, rows)])


@torch.inference_mode()
def _segment(exported: ExportedModel, loader: DataLoader, images: list[Path], folder: Path) -> pd.DataFrame:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    labels = exported.labels
    names = _mask_names(images)
    rows, done = [], 0
    for batch, sizes in loader:
        masks = predictions(exported.model(batch.to(exported.device)).float())  # [B, H, W] class indices
        for mask, (height, width) in zip(masks, sizes):
            mask = torch.nn.functional.interpolate(mask[None, None].float(), size=(height, width), mode="nearest")
            values = mask[0, 0].to(torch.uint8).cpu().numpy()
            path = folder / names[done]
            Image.fromarray(values * 255 if len(labels) == 2 else values, mode="L").save(path)
            counts = np.bincount(values.ravel(), minlength=len(labels)) / values.size
            rows.append({"path": str(images[done]), "mask": str(path),
                         **{f"share_{label}": float(share) for label, share in zip(labels, counts)}})
            done += 1
    return pd.DataFrame(rows)


def _mask_names(images: list[Path]) -> list[str]:
    """A PNG name per image: its stem, made unique with a number where stems repeat."""
    seen: dict[str, int] = {}
    names = []
    for image in images:
        count = seen.get(image.stem, 0)
        seen[image.stem] = count + 1
        names.append(f"{image.stem}.png" if count == 0 else f"{image.stem}-{count}.png")
    return names


def eval_transform(cfg: dict[str, Any]) -> Any:
    """PIL image -> normalized tensor, as ``pretrained_cfg`` describes the validation's preprocessing.

    ``crop_mode`` center: the shorter side resized to ``floor(size / crop_pct)``, the centre
    ``size`` cropped (timm's evaluation transform, and what a folder's validation saw);
    squash: the whole image resized to ``size``.
    """
    from torchvision import transforms as T

    _, height, width = cfg["input_size"]
    mode = T.InterpolationMode(cfg.get("interpolation") or "bilinear")
    if cfg.get("crop_mode") == "squash":
        resize = [T.Resize((height, width), interpolation=mode)]
    else:
        side = stored_side(min(height, width), cfg.get("crop_pct") or 1.0)
        resize = [T.Resize(side, interpolation=mode), T.CenterCrop((height, width))]
    return T.Compose([*resize, T.ToTensor(), T.Normalize(cfg["mean"], cfg["std"])])


class _Images(Dataset):
    """Image files prepared as ``config.json``'s ``pretrained_cfg`` says, with each one's (height, width).

    Decoded as the trials' data was (:func:`~tune_app.training.datasets.imaging.decode`):
    upright, 8-bit sRGB. A square centre-cropped input is framed as the image cache frames
    validation images (a large JPEG decoded at the reduced scale that still covers the
    resize, the same square, its centre crop), so a prediction sees the pixels validation saw.
    """

    def __init__(self, paths: list[Path], cfg: dict[str, Any], task: str) -> None:
        from torchvision import transforms as T

        self.paths = paths
        _, height, width = cfg["input_size"]
        interpolation = cfg.get("interpolation") or "bilinear"
        self.framed = (task != "segmentation" and cfg.get("crop_mode") != "squash" and height == width
                       and interpolation in INTERPOLATIONS)
        self.side, self.crop, self.interpolation = stored_side(height, cfg.get("crop_pct") or 1.0), height, interpolation
        self.normalize = T.Compose([T.ToTensor(), T.Normalize(cfg["mean"], cfg["std"])])
        self.transform = eval_transform({**cfg, "crop_mode": "squash"} if task == "segmentation" else cfg)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, tuple[int, int]]:
        path = self.paths[index]
        try:
            decoded = decode(str(path), self.side if self.framed else None)
        except (OSError, ValueError) as exc:  # cut short or corrupt after its header, over the pixel limit
            raise SpecError([("PATH", f"cannot read the image {path}: {exc}")]) from None
        width, height = decoded.size
        if not self.framed:
            return self.transform(decoded.image), (height, width)
        square = frame(decoded, self.side, self.interpolation, self.crop)
        start = round((self.side - self.crop) / 2.0)  # the square's centre crop is CenterCrop's (imaging.frame)
        return self.normalize(square.crop((start, start, start + self.crop, start + self.crop))), (height, width)


def _collate(items: list[tuple[torch.Tensor, tuple[int, int]]]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    return torch.stack([image for image, _ in items]), [size for _, size in items]
