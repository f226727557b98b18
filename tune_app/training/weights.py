"""Pretrained weights: find them in the hub caches, read files safely, load by name and shape.

``model.pretrained: true`` means the library's own weights. :func:`timm_weights_file` and
:func:`torchvision_weights_file` return the cached file, downloading it first unless the
hub is offline (``HF_HUB_OFFLINE=1``, honoured for torchvision's URLs too), so no trial
ever fetches anything. ``model.pretrained: PATH`` is a state dict in a ``.safetensors`` or
``.pth``/``.pt``/``.bin`` file, read without unpickling arbitrary objects, or a model that
``tune-app export`` wrote (a ``best_model/`` directory: ``model.safetensors`` and
``config.json``, whose normalization the new fine-tune then uses).

:func:`load_weights` copies every tensor whose name and shape match the model, sums or
averages the first convolution's kernel when the input channels differ (like timm), skips
the rest (a new head, a decoder) and fails when too little of the model is covered (a
file of another architecture).

Example:
    >>> import torch, tempfile, os, timm
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pth")
    >>> torch.save(timm.create_model("test_resnet", num_classes=1000).state_dict(), path)
    >>> model = timm.create_model("test_resnet", num_classes=3, in_chans=1)
    >>> report = load_weights(model, path, required=[n for n in model.state_dict() if not n.startswith("fc.")])
    >>> report.adapted, report.skipped   # 1 input channel: summed kernel; a 3-class head: fresh
    (('conv1.0.weight',), ('fc.weight', 'fc.bias'))
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

_logger = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
# An exported model's directory (tune-app export): timm's file names.
EXPORTED_WEIGHTS = "model.safetensors"
EXPORTED_CONFIG = "config.json"
# Below this share of the backbone found in the file, the file is for another architecture.
MIN_LOADED_FRACTION = 0.9
LOCAL_FILE_HINT = ("pass a local file instead: `model.pretrained: /path/to/weights.safetensors` "
                   "(or a .pth/.pt/.bin state dict)")


class PretrainedWeightsError(ValueError):
    """Pretrained weights could not be found, read or matched to the model."""


@dataclass(frozen=True)
class LoadResult:
    """What :func:`load_weights` did; ``summary()`` is one line for the training log.

    Attributes:
        path: The file read.
        loaded: How many model tensors now hold values from the file.
        adapted: Loaded tensors that were converted (the first conv to other input channels).
        fresh: Required model tensors the file did not provide (left as initialized).
        skipped: File tensors not used (no such name in the model, or another shape).
        total: How many model tensors the file was expected to provide.
    """

    path: str
    loaded: int
    adapted: tuple[str, ...]
    fresh: tuple[str, ...]
    skipped: tuple[str, ...]
    total: int

    def summary(self) -> str:
        text = f"loaded {self.loaded} tensors from {self.path} ({self.loaded - len(self.adapted)} as they are"
        if self.adapted:
            text += f", {len(self.adapted)} adapted to the input channels: {', '.join(self.adapted)}"
        text += f"); skipped {len(self.skipped)} of the file's tensors"
        if self.skipped:
            text += f" ({_listing(self.skipped)})"
        if self.fresh:
            text += f"; {len(self.fresh)} of {self.total} backbone tensors left fresh: {_listing(self.fresh)}"
        return text


# ------------------------------------------------------------------ reading
def exported_config(path: str | os.PathLike[str]) -> dict | None:
    """The ``config.json`` of an exported model's directory, or None when ``path`` is not one.

    Raises:
        PretrainedWeightsError: A directory without the two files, or a config that is not JSON.
    """
    import json

    path = Path(path)
    if not path.is_dir():
        return None
    missing = [name for name in (EXPORTED_CONFIG, EXPORTED_WEIGHTS) if not (path / name).is_file()]
    if missing:
        raise PretrainedWeightsError(f"{path} is a directory but not an exported model: it has no "
                                     f"{' and no '.join(missing)} (tune-app export writes both)")
    try:
        config = json.loads((path / EXPORTED_CONFIG).read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise PretrainedWeightsError(f"{path / EXPORTED_CONFIG} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise PretrainedWeightsError(f"{path / EXPORTED_CONFIG} must hold a JSON object")
    return config


def exported_normalization(path: str | os.PathLike[str] | bool) -> tuple[tuple, tuple] | None:
    """Mean and std an exported model was trained with (its ``config.json``), or None if ``path`` is no such model."""
    config = exported_config(path) if isinstance(path, (str, os.PathLike)) else None
    cfg = (config or {}).get("pretrained_cfg") or {}
    if cfg.get("mean") is None or cfg.get("std") is None:
        return None
    return tuple(cfg["mean"]), tuple(cfg["std"])


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a ``torch.save`` file (``weights_only``).

    A dict that nests the weights under ``state_dict`` or ``model`` (training checkpoints)
    is unwrapped, and a ``module.`` prefix (DataParallel) is dropped.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pth")
        >>> torch.save({"epoch": 3, "state_dict": {"w": torch.ones(2)}}, path)
        >>> read_state_dict(path)
        {'w': tensor([1., 1.])}
    """
    path = Path(path)
    if exported_config(path) is not None:
        path = path / EXPORTED_WEIGHTS
    if not path.is_file():
        raise PretrainedWeightsError(f"model.pretrained: no such file: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            data: object = load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types for a bad header
            raise PretrainedWeightsError(f"{path} is not a readable safetensors file: {exc}") from exc
    else:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            # weights_only refuses pickled classes and functions: loading them would run code.
            raise PretrainedWeightsError(
                f"{path} holds pickled Python objects besides tensors, which are not loaded because unpickling "
                f"can run arbitrary code (torch.load weights_only=True). Save just the weights, e.g. "
                f"torch.save(model.state_dict(), path) or safetensors.torch.save_file(model.state_dict(), path)."
                + _unsupported_global(exc)) from exc
        except Exception as exc:
            raise PretrainedWeightsError(f"{path} is not a readable torch.save file "
                                         f"(supported: {', '.join(WEIGHT_SUFFIXES)}): {exc}") from exc
    return _unwrap(data, path)


def _unsupported_global(exc: Exception) -> str:
    # torch names the offending class ("Unsupported global: GLOBAL __main__.Config ..."); keep just that
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
    return f" (it holds a {found.group(1)})" if found else ""


def _unwrap(data: object, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):  # {"model": {"state_dict": ...}} nests at most a couple of levels
        if isinstance(data, Mapping) and not _is_state_dict(data):
            inner = next((data[k] for k in ("state_dict", "model", "model_state_dict") if k in data), None)
            if inner is None:
                break
            data = inner
    if not isinstance(data, Mapping) or not _is_state_dict(data):
        keys = ", ".join(map(str, list(data)[:8])) if isinstance(data, Mapping) else type(data).__name__
        raise PretrainedWeightsError(f"{path} holds no state dict (a mapping of names to tensors, possibly under "
                                     f"'state_dict' or 'model'); found: {keys}")
    state = {str(k): v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _is_state_dict(data: Mapping) -> bool:
    values = list(data.values())
    return bool(values) and sum(isinstance(v, torch.Tensor) for v in values) >= len(values) / 2


# ------------------------------------------------------------------ loading
def load_weights(
    model: nn.Module,
    source: str | os.PathLike[str] | Mapping[str, torch.Tensor],
    *,
    renames: Sequence[tuple[str, str]] = (("", ""),),
    required: Collection[str] | None = None,
    filter_fn: Callable[[dict[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]] | None = None,
    min_fraction: float = MIN_LOADED_FRACTION,
    label: str | None = None,
) -> LoadResult:
    """Copy the tensors of ``source`` whose name and shape match into ``model``.

    Args:
        model: The model, already built with its new head and input channels.
        source: A weights file or a state dict.
        renames: Where in ``model`` a file's names may live: ``(old, new)`` replaces a
            leading ``old`` by ``new``, tried in order. ``("", "")`` reads a file of the whole
            model, ``("", "encoder.model.")`` a file of the backbone alone. A renamed name
            also matches with its first dot written as ``_`` (timm's ``features_only``
            flattening: ``stages.0`` -> ``stages_0``).
        required: Model tensors the file should provide (the backbone; default: all).
        filter_fn: Converts a file of another layout first (timm's ``checkpoint_filter_fn``).
        min_fraction: Fail when fewer of ``required`` than this share are found.
        label: The model's name in messages.

    Returns:
        A :class:`LoadResult` with what was loaded, adapted, left fresh and skipped.
    """
    path = str(source) if not isinstance(source, Mapping) else "<state dict>"
    state = read_state_dict(source) if not isinstance(source, Mapping) else dict(source)
    if filter_fn is not None:
        state = filter_fn(state, model)
    label = label or type(model).__name__
    target = model.state_dict()
    first_conv = next((k for k, v in target.items() if v.ndim == 4 and k.endswith("weight")), None)

    matched: dict[str, torch.Tensor] = {}
    adapted, skipped, mismatched = [], [], []
    for key, value in state.items():
        names = [c for c in _candidates(key, renames) if c in target and c not in matched]
        name = next((c for c in names if target[c].shape == value.shape), names[0] if names else None)
        if name is None:
            skipped.append(key)
            continue
        want = target[name]
        if value.shape == want.shape:
            matched[name] = value
        elif name == first_conv and (conv := _adapt_input_conv(value, want.shape)) is not None:
            matched[name] = conv
            adapted.append(name)
        else:
            skipped.append(key)
            mismatched.append(f"{name} (model {list(want.shape)}, file {list(value.shape)})")

    needed = [k for k in (target if required is None else required) if k in target and not k.endswith("num_batches_tracked")]
    found = sum(k in matched for k in needed)
    if needed and found < min_fraction * len(needed):
        hint = f"; shapes differ for {_listing(mismatched)}" if mismatched else ""
        raise PretrainedWeightsError(
            f"{path} does not fit {label}: only {found} of the model's {len(needed)} backbone tensors ({found / len(needed):.0%}) "
            f"have a matching name and shape in the file (at least {min_fraction:.0%} needed). Is it a checkpoint of "
            f"another architecture? The model expects e.g. {_listing(needed[:3])}; the file holds e.g. "
            f"{_listing(list(state)[:3])}{hint}")

    with torch.no_grad():
        for name, value in matched.items():
            target[name].copy_(value.to(dtype=target[name].dtype))  # state_dict() tensors share storage with the model
    result = LoadResult(path=path, loaded=len(matched), adapted=tuple(adapted),
                        fresh=tuple(k for k in needed if k not in matched), skipped=tuple(skipped), total=len(needed))
    _logger.info("%s: %s", label, result.summary())
    return result


def _adapt_input_conv(weight: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """The first conv's kernel for another number of input channels, or None if it cannot be."""
    if weight.ndim != 4 or weight.shape[0] != shape[0] or weight.shape[2:] != shape[2:]:
        return None
    from timm.models import adapt_input_conv

    try:  # sum for 1 channel, tile and rescale for others (timm's rule for RGB kernels)
        return adapt_input_conv(shape[1], weight)
    except NotImplementedError:  # a kernel that is not RGB
        return None


def _candidates(key: str, renames: Sequence[tuple[str, str]]) -> list[str]:
    names = []
    for old, new in renames:
        if key.startswith(old):
            rest = key[len(old):]
            names += [new + rest, new + rest.replace(".", "_", 1)] if new else [rest]
    return names


def _listing(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ------------------------------------------------------------------ hub caches
def hub_offline() -> bool:
    """Whether downloads are off: ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) read now."""
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return constants.HF_HUB_OFFLINE or any(str(f).upper() in ("1", "ON", "YES", "TRUE") for f in flags if f)


def hf_cache_dir() -> str:
    """The Hugging Face hub cache, from the environment as it is now (not at import time)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    return os.path.join(os.path.expanduser(os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface")), "hub")


def timm_weights_file(arch: str) -> str:
    """The local file of timm's default (or tagged: ``resnet18.a1_in1k``) weights for ``arch``."""
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(arch)
    except RuntimeError as exc:  # an unknown tag
        raise PretrainedWeightsError(f"timm has no pretrained weights {arch}: {exc}") from exc
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise PretrainedWeightsError(f"timm has no pretrained weights for {arch}; {LOCAL_FILE_HINT}")
    if cfg.hf_hub_id:
        repo, _, revision = cfg.hf_hub_id.partition("@")
        files = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        return _hf_file(repo, files, revision or None, label=f"timm/{arch}")
    return _url_file(cfg.url, label=f"timm/{arch}")


def torchvision_weights_file(arch: str) -> str:
    """The local file of torchvision's ``DEFAULT`` weights for ``arch`` (torch hub cache)."""
    from torchvision.models import get_model_weights

    try:
        weights = get_model_weights(arch).DEFAULT
    except (ValueError, AttributeError) as exc:
        raise PretrainedWeightsError(f"torchvision has no pretrained weights for {arch}; {LOCAL_FILE_HINT}") from exc
    return _url_file(weights.url, label=f"torchvision/{arch}")


def _not_cached(label: str, where: str) -> PretrainedWeightsError:
    return PretrainedWeightsError(
        f"no pretrained weights for {label} were found in the cache ({where}) and downloads are off "
        f"(HF_HUB_OFFLINE=1). Run once with network access to fill the cache, or {LOCAL_FILE_HINT}")


def _hf_file(repo: str, filenames: Sequence[str], revision: str | None, *, label: str) -> str:
    from huggingface_hub import errors, hf_hub_download, try_to_load_from_cache

    cache = hf_cache_dir()
    for filename in filenames:  # the cache first: a plain file lookup, no request
        hit = try_to_load_from_cache(repo, filename, cache_dir=cache, revision=revision)
        if isinstance(hit, str):
            return hit
    if hub_offline():
        raise _not_cached(label, f"{' or '.join(filenames)} of {repo} under {cache}")
    remote_missing = getattr(errors, "RemoteEntryNotFoundError", errors.EntryNotFoundError)
    for filename in filenames:
        try:
            return hf_hub_download(repo, filename, revision=revision, cache_dir=cache)
        except errors.LocalEntryNotFoundError as exc:  # the hub is unreachable
            raise PretrainedWeightsError(f"could not download pretrained weights for {label} from the Hugging Face "
                                         f"hub ({repo}): {exc}. {LOCAL_FILE_HINT[0].upper()}{LOCAL_FILE_HINT[1:]}") from exc
        except remote_missing:
            continue  # try the next file name (timm's .bin fallback)
        except Exception as exc:  # network and HTTP errors of whichever HTTP client the hub uses
            raise PretrainedWeightsError(f"could not download pretrained weights for {label} from the Hugging Face "
                                         f"hub ({repo}): {exc}. {LOCAL_FILE_HINT[0].upper()}{LOCAL_FILE_HINT[1:]}") from exc
    raise PretrainedWeightsError(f"the hub repo {repo} has none of {', '.join(filenames)}; {LOCAL_FILE_HINT}")


def _url_file(url: str, *, label: str) -> str:
    # torch.hub's cache layout, shared with torchvision and timm: <TORCH_HOME>/hub/checkpoints/<file name>
    filename = os.path.basename(urlparse(url).path)
    path = os.path.join(torch.hub.get_dir(), "checkpoints", filename)
    if os.path.isfile(path):
        return path
    if hub_offline():
        raise _not_cached(label, path)
    match = torch.hub.HASH_REGEX.search(filename)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        torch.hub.download_url_to_file(url, path, match.group(1) if match else None, progress=False)
    except Exception as exc:  # URLError, hash mismatch, disk full, ...
        raise PretrainedWeightsError(f"could not download pretrained weights for {label} from {url}: {exc}. "
                                     f"{LOCAL_FILE_HINT[0].upper()}{LOCAL_FILE_HINT[1:]}") from exc
    return path
