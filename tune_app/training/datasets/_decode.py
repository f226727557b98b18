"""Reading image and mask files, and framing them as the stored squares of the input pipeline.

Both input paths use these functions, so they frame images identically: the cache
(decode once, store the square) and per-item reading (``data.cache: off``).

Example:
    >>> from PIL import Image
    >>> square(Image.new("RGB", (500, 375)), 256).size
    (256, 256)
"""

from __future__ import annotations

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
        return int(round((extent - side) / 2.0))
    # CenterCrop(crop) of the resized image starts at round((extent - crop) / 2); the square's own centre
    # crop starts round((side - crop) / 2) into the square
    start = int(round((extent - crop) / 2.0)) - int(round((side - crop) / 2.0))
    return min(max(start, 0), extent - side)


def square_mask(mask: np.ndarray, side: int, crop: int | None = None) -> np.ndarray:
    """:func:`square` for a mask, nearest neighbour: class indices stay class indices."""
    return np.asarray(square(Image.fromarray(mask), side, "nearest", crop))
