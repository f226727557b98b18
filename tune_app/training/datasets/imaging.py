"""Reading image and mask files, framing them as stored squares, and the cache's decoding worker.

Every path that reads an image uses :func:`decode`: the image cache (decode once, store
the square), per-item reading (``data.cache: off``), the bad-image check and
``tune-app predict``. It gives the pixels an image viewer shows:

- upright: the EXIF orientation applied (all 8); a broken EXIF block is ignored quietly;
- 8-bit RGB by the colour model's meaning: 16-bit grayscale scaled by its type's range
  (``round(x * 255 / 65535)``, so a 12-bit image stored in 16 bits stays dark, as a viewer
  shows it), 32-bit integer grayscale by 65535 when its values fit 16 bits (PNG and
  TIFF writers store 16-bit data so) else by ``2**31 - 1``; 16-bit RGB keeps Pillow's high byte
  (within 1 of the same scaling); CMYK, LAB and embedded ICC profiles through Pillow's
  ImageCms (to sRGB), quietly falling back to Pillow's own conversion where it cannot;
- the first frame of animated and multi-picture files (GIF, WebP, MPO, APNG);
- a large JPEG decoded at the smallest DCT scale (1/2, 1/4, 1/8) that still covers the
  stored square (``min_side``), then resized from exactly the region it covers;
- an image over Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) is an error.

The module needs PIL and NumPy only (pillow-heif for HEIC, when installed):
``python imaging.py TASK.json`` (run by its path, see ``_cache._WORKER``) is one worker
process of a cache build, started in a second, without torch.

Example:
    >>> from PIL import Image
    >>> square(Image.new("RGB", (500, 375)), 256).size
    (256, 256)
"""

from __future__ import annotations

import functools
import io
import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

INTERPOLATIONS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
                  "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}
HEIF_EXTENSIONS = (".heic", ".heif")
# what a class folder's images may be: the raster formats Pillow reads (HEIC/HEIF with pillow-heif)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".bmp", ".dib", ".webp", ".tif", ".tiff",
                    ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".mpo", ".avif", ".jp2", ".j2k", ".tga", ".qoi",
                    *HEIF_EXTENSIONS)
HEIF_EXTRA = "pip install 'tune-app[heif]'"
# Pillow's EXIF parser warns of a broken block for every such file; the orientation is then 1
_EXIF_WARNINGS = r"(Possibly corrupt|Corrupt) EXIF|Tag data larger than file|Tag offset too large"
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}  # EXIF orientation -> the transpose that makes it upright
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Decoded:
    """An upright 8-bit RGB picture, maybe decoded at a reduced JPEG scale.

    ``image`` holds the pixels; ``size`` is the full upright picture's (width, height);
    ``box`` is the region of ``image`` that covers the whole picture (all of it, unless a
    reduced JPEG decode rounded its size up): resize from it to keep the geometry exact.
    """

    image: Image.Image
    size: tuple[int, int]
    box: Box

    @classmethod
    def whole(cls, image: Image.Image) -> Decoded:
        return cls(image, image.size, (0.0, 0.0, float(image.width), float(image.height)))


class MissingPluginError(ValueError):
    """An image format whose Pillow plugin is not installed (HEIC/HEIF without pillow-heif)."""


def heif_available() -> bool:
    """Whether HEIC/HEIF files can be read: pillow-heif installed (its opener is registered here)."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def missing_plugin(paths: list[Path] | list[str]) -> str | None:
    """Why some of ``paths`` cannot be read on this install (HEIC without pillow-heif); None if all can.

    Asked where files are found, so a folder of iPhone photos fails when it is checked,
    not as thousands of "cannot identify image file" errors.
    """
    heif = [str(p) for p in paths if Path(p).suffix.lower() in HEIF_EXTENSIONS]
    if not heif or heif_available():
        return None
    return (f"{len(heif)} HEIC/HEIF image{'s' * (len(heif) != 1)} (first: {heif[0]}) need the pillow-heif plugin: "
            f"{HEIF_EXTRA}")


def decode(path: str, min_side: int | None = None) -> Decoded:
    """The picture in ``path`` as a viewer shows it, upright 8-bit RGB (see the module's rules).

    With ``min_side``, a JPEG may be decoded at a reduced DCT scale whose shorter side is
    still at least ``min_side``: several times less work for a photo framed at a few hundred
    pixels, which :func:`frame` then resizes as it would the full decode.

    Raises:
        MissingPluginError: A HEIC/HEIF file without pillow-heif.
        OSError, ValueError, Image.DecompressionBombError: The file cannot be decoded.
    """
    if Path(path).suffix.lower() in HEIF_EXTENSIONS and not heif_available():
        raise MissingPluginError(f"{path}: HEIC/HEIF images need the pillow-heif plugin: {HEIF_EXTRA}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_EXIF_WARNINGS)
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)  # raised below instead
        with Image.open(path) as image:  # the first frame of animated and multi-picture files
            _check_pixels(image)
            orientation = _orientation(image)
            full = image.size
            box: Box = (0.0, 0.0, float(full[0]), float(full[1]))
            if min_side is not None:
                drafted = image.draft("RGB", _resized(full, min_side))  # None: not a JPEG
                if drafted is not None:
                    box = tuple(float(v) for v in drafted[1])  # type: ignore[assignment]
            image.load()
            rgb = _to_rgb(image)
    transpose = _TRANSPOSE.get(orientation)
    if transpose is None:
        return Decoded(rgb, full, box)
    upright = full if orientation < 5 else (full[1], full[0])
    return Decoded(rgb.transpose(transpose), upright, _transposed_box(box, rgb.size, transpose))


def load_rgb(path: str) -> Image.Image:
    """The picture in ``path`` as upright 8-bit RGB at full resolution (:func:`decode`)."""
    return decode(path).image


def upright_size(path: str) -> tuple[int, int]:
    """The (width, height) :func:`decode` gives ``path``, from its header: what a mask must match."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_EXIF_WARNINGS)
        with Image.open(path) as image:
            width, height = image.size
            return (height, width) if _orientation(image) >= 5 else (width, height)


def _check_pixels(image: Image.Image) -> None:
    """Pillow's decompression-bomb limit as an error: Pillow itself only warns up to twice the limit."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and image.width * image.height > limit:
        raise Image.DecompressionBombError(
            f"{image.width}x{image.height} = {image.width * image.height} pixels is over Pillow's "
            f"decompression-bomb limit of {limit} (PIL.Image.MAX_IMAGE_PIXELS)")


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1..8); 1 when there is none or the EXIF block is broken."""
    try:
        value = image.getexif().get(0x0112, 1)  # ExifTags.Base.Orientation
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # Pillow raises many kinds for a malformed EXIF block
        return 1


def _resized(size: tuple[int, int], side: int) -> tuple[int, int]:
    """``size`` with its shorter side resized to ``side`` (torchvision's Resize rule)."""
    width, height = size
    if width <= height:
        return (side, int(side * height / width))
    return (int(side * width / height), side)


_POINT = {  # where a transpose moves the point (x, y) of a w x h image
    Image.Transpose.FLIP_LEFT_RIGHT: lambda x, y, w, h: (w - x, y),
    Image.Transpose.FLIP_TOP_BOTTOM: lambda x, y, w, h: (x, h - y),
    Image.Transpose.ROTATE_180: lambda x, y, w, h: (w - x, h - y),
    Image.Transpose.TRANSPOSE: lambda x, y, w, h: (y, x),
    Image.Transpose.ROTATE_270: lambda x, y, w, h: (h - y, x),
    Image.Transpose.TRANSVERSE: lambda x, y, w, h: (h - y, w - x),
    Image.Transpose.ROTATE_90: lambda x, y, w, h: (y, w - x),
}


def _transposed_box(box: Box, size: tuple[int, int], transpose: Image.Transpose) -> Box:
    """``box`` of a ``size`` image, in the coordinates of the transposed image.

    A reduced JPEG decode rounds its size up, so the picture covers a little less than
    the decoded image; after a rotation that spare edge may lie on the left or the top.
    """
    corners = [_POINT[transpose](x, y, *size) for x, y in ((box[0], box[1]), (box[2], box[3]))]
    xs, ys = zip(*corners)
    return (min(xs), min(ys), max(xs), max(ys))


# ------------------------------------------------------------------ colour
def _to_rgb(image: Image.Image) -> Image.Image:
    """A new 8-bit RGB image of ``image``'s colours (high bit depth scaled, colour-managed where possible)."""
    if image.mode in _SIXTEEN_BIT or image.mode == "I":
        return _gray_to_8bit(image).convert("RGB")
    if image.mode == "P":  # via RGBA: Pillow warns of a palette's byte transparency on the direct way
        image = image.convert("RGBA")
    icc = image.info.get("icc_profile")
    if icc or image.mode == "LAB":
        managed = _managed(image, icc or None)
        if managed is not None:
            return managed
    return image.convert("RGB")


def _gray_to_8bit(image: Image.Image) -> Image.Image:
    """16- or 32-bit integer grayscale scaled by its type's range to 8 bits, rounded.

    16-bit: ``round(x * 255 / 65535)``. 32-bit (``I``): the same when every value fits 16
    bits (how 16-bit PNG and TIFF data arrive there), else ``round(x * 255 / (2**31 - 1))``;
    negative values are 0. Scaling by the type, not by the image's own maximum, keeps a dark
    image dark and a 12-bit image in 16 bits as a viewer shows it.
    """
    values = np.asarray(image).astype(np.int64)
    full = 65535 if image.mode != "I" or values.max(initial=0) <= 65535 else 2**31 - 1
    scaled = (np.clip(values, 0, full) * 255 + full // 2) // full
    return Image.fromarray(scaled.astype(np.uint8))


def _managed(image: Image.Image, icc: bytes | None) -> Image.Image | None:
    """``image`` converted to sRGB through its ICC profile (or CIE LAB's); None where ImageCms cannot."""
    base = image if image.mode in ("RGB", "CMYK", "L", "LAB") else image.convert("RGB")
    transform = _transform(icc, base.mode)
    if transform is None:
        return None
    from PIL import ImageCms

    try:
        return ImageCms.applyTransform(base, transform)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None


@functools.lru_cache(maxsize=16)
def _transform(icc: bytes | None, mode: str) -> object | None:
    """The transform from ``icc`` (None: CIE LAB) in ``mode`` to sRGB; None for sRGB itself or a profile
    ImageCms cannot use (a photo folder holds few distinct profiles, hence the cache)."""
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without LittleCMS
        return None
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc)) if icc else ImageCms.createProfile("LAB")
        if mode == "RGB" and _is_srgb(ImageCms.getProfileDescription(source)):
            return None  # already what the pixels mean
        return ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), mode, "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _is_srgb(description: str) -> bool:
    """Whether a profile is sRGB by its name (cameras' "sRGB IEC61966-2.1", LittleCMS's "sRGB built-in").

    Skipping the sRGB-to-sRGB transform keeps such photos' pixels exactly as stored; a
    name that merely mentions sRGB ("linear sRGB") is converted.
    """
    name = description.strip().lower()
    return name in ("srgb", "srgb built-in") or name.startswith(("srgb iec61966-2.1", "srgb iec61966-2-1"))


# ------------------------------------------------------------------ masks and framing
def load_mask(path: str) -> np.ndarray:
    """A mask file as a ``[H, W]`` uint8 array of raw pixel values, as stored (no orientation, no scaling).

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


def frame(decoded: Decoded, side: int, interpolation: str = "bilinear", crop: int | None = None) -> Image.Image:
    """The full picture's shorter side resized to ``side`` (torchvision's Resize rule), then a centred square.

    The resize goes from ``decoded.box``, so a reduced JPEG decode is framed with the full
    decode's geometry. With ``crop``, the square sits so that its own centre ``crop`` x
    ``crop`` is exactly what torchvision's ``CenterCrop(crop)`` takes of the resized image
    (timm's validation transform), pixel for pixel.
    """
    size = _resized(decoded.size, side)
    image = decoded.image
    if size != image.size or decoded.box != (0.0, 0.0, float(image.width), float(image.height)):
        image = image.resize(size, INTERPOLATIONS[interpolation], box=decoded.box)
    left, top = (_offset(extent, side, crop) for extent in size)
    return image.crop((left, top, left + side, top + side))


def square(image: Image.Image, side: int, interpolation: str = "bilinear", crop: int | None = None) -> Image.Image:
    """:func:`frame` of an image already in memory."""
    return frame(Decoded.whole(image), side, interpolation, crop)


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
            decoded = decode(images[k], side)
            image_out[row] = np.asarray(frame(decoded, side, interpolation, crop))
        except Exception as exc:  # PIL raises many kinds for truncated or foreign files
            bad[row] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        if mask_out is not None:
            mask = load_mask(masks[k])  # type: ignore[index]
            width, height = decoded.size
            if mask.shape != (height, width):
                mismatched.append(f"mask {masks[k]} is {mask.shape[1]}x{mask.shape[0]} but image "  # type: ignore[index]
                                  f"{images[k]} is {width}x{height} (upright)")
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
