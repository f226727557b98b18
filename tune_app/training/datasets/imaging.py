"""Reading image and mask files, framing them as stored squares, and the cache's decoding worker.

Both input paths use these functions, so they frame images identically: the image
cache (decode once, store the square) and per-item reading (``data.cache: off``). The
module needs PIL and NumPy only: ``python imaging.py TASK.json`` (run by its path, see
``_cache._WORKER``) is one worker process of a cache build, started in a second, without torch.

Example:
    >>> from PIL import Image
    >>> square(Image.new("RGB", (500, 375)), 256).size
    (256, 256)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

INTERPOLATIONS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
                  "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}


def load_rgb(path: str) -> Image.Image:
    """Open an image as RGB (grayscale, palette and RGBA images too)."""
    with Image.open(path) as image:
        return image.convert("RGB")


def load_mask(path: str) -> np.ndarray:
    """A mask file as a ``[H, W]`` uint8 array of raw pixel values.

    Palette (P) masks give their palette indices, as VOC-style masks expect.
    """
    with Image.open(path) as mask:
        if mask.mode in ("L", "P", "1"):
            return np.asarray(mask).astype(np.uint8)
        if mask.mode.startswith("I"):
            values = np.asarray(mask)
            if values.max(initial=0) > 255 or values.min(initial=0) < 0:
                raise ValueError(f"mask {path}: values must lie in 0..255, got {values.min()}..{values.max()}")
            return values.astype(np.uint8)
        if mask.mode in ("RGB", "RGBA", "LA"):
            rgb = np.asarray(mask.convert("RGB"))
            if (rgb == rgb[..., :1]).all():  # a grey image saved as RGB
                return np.ascontiguousarray(rgb[..., 0])
        raise ValueError(f"mask {path} is a {mask.mode} colour image; a mask holds one class index per pixel "
                         f"(a single-channel L or P image)")


def square(image: Image.Image, side: int, interpolation: str = "bilinear", crop: int | None = None) -> Image.Image:
    """The shorter side resized to ``side`` (torchvision's Resize rule), then a centred square.

    With ``crop``, the square sits so that its own centre ``crop`` x ``crop`` is exactly
    what torchvision's ``CenterCrop(crop)`` takes of the resized image (timm's validation
    transform), pixel for pixel.
    """
    width, height = image.size
    if width <= height:
        size = (side, int(side * height / width))
    else:
        size = (int(side * width / height), side)
    if size != image.size:
        image = image.resize(size, INTERPOLATIONS[interpolation])
    left, top = (_offset(extent, side, crop) for extent in size)
    return image.crop((left, top, left + side, top + side))


def _offset(extent: int, side: int, crop: int | None) -> int:
    if crop is None:
        return round((extent - side) / 2.0)
    # CenterCrop(crop) of the resized image starts at round((extent - crop) / 2); the square's own centre
    # crop starts round((side - crop) / 2) into the square
    start = round((extent - crop) / 2.0) - round((side - crop) / 2.0)
    return min(max(start, 0), extent - side)


def square_mask(mask: np.ndarray, side: int, crop: int | None = None) -> np.ndarray:
    """:func:`square` for a mask, nearest neighbour: class indices stay class indices."""
    return np.array(square(Image.fromarray(mask), side, "nearest", crop))


# ------------------------------------------------------------------ the worker
def decode_into(directory: str, shape: list[int], crop: int, interpolation: str, rows: list[int],
                images: list[str], masks: list[str] | None) -> dict:
    """Decode ``images`` (and ``masks``) into rows ``rows`` of the cache files in ``directory``.

    Returns ``{"done": n, "bad": {row: why}, "values": {row: mask values}, "mismatched": [...]}``.
    """
    count, side = shape[0], shape[1]
    image_out = np.memmap(Path(directory) / "images.u8", np.uint8, "r+", shape=tuple(shape))
    mask_out = None if masks is None else np.memmap(Path(directory) / "masks.u8", np.uint8, "r+",
                                                    shape=(count, side, side))
    bad: dict[int, str] = {}
    values: dict[int, list] = {}
    mismatched: list[str] = []
    for k, row in enumerate(rows):
        try:
            image = load_rgb(images[k])
            image_out[row] = np.asarray(square(image, side, interpolation, crop))
        except Exception as exc:  # PIL raises many kinds for truncated or foreign files
            bad[row] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        if mask_out is not None:
            mask = load_mask(masks[k])  # type: ignore[index]
            if mask.shape != (image.height, image.width):
                mismatched.append(f"mask {masks[k]} is {mask.shape[1]}x{mask.shape[0]} but image "  # type: ignore[index]
                                  f"{images[k]} is {image.width}x{image.height}")
                continue
            mask_out[row] = square_mask(mask, side, crop)
            values[row] = np.unique(mask).tolist()
    image_out.flush()
    if mask_out is not None:
        mask_out.flush()
    return {"done": len(rows), "bad": bad, "values": values, "mismatched": mismatched}


def worker(task_file: str) -> None:
    """Decode every chunk of a task file, printing one JSON line of results per chunk."""
    task = json.loads(Path(task_file).read_text())
    for chunk in task["chunks"]:
        result = decode_into(task["directory"], task["shape"], task["crop"], task["interpolation"], chunk["rows"],
                             chunk["images"], chunk["masks"])
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    worker(sys.argv[1])
