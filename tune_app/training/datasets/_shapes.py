"""``shapes``: generated scenes of circles, squares and triangles with exact masks.

Each image holds 1 to 3 shapes of random size, position and colour on a
textured background (a tinted grey with a gradient and light noise). Shapes are
painted in order, so later ones occlude earlier ones, and the mask holds the class
of the shape painted last at each pixel: 0 background, 1 circle, 2 square,
3 triangle. A pixel belongs to a shape when its centre lies inside it, so masks
and images agree exactly. For a given size every kind has the same area, so area
tells nothing about the class. Squares stand upright and triangles point up unless
``max_rotation`` tilts them: a small U-Net learns upright shapes about twice as
fast as freely rotated ones.

Generation is vectorized NumPy, deterministic from a seed.

Example:
    >>> scenes = generate_shapes(4, 32, seed=0)
    >>> scenes.images.shape, scenes.masks.shape, int(scenes.masks.max()) <= 3
    ((4, 3, 32, 32), (4, 32, 32), True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._arrays import ArrayDataset
from ._augment import BatchTransform
from ._base import HALF, DataBundle, DataConfig

CLASS_NAMES = ("background", "circle", "square", "triangle")
CIRCLE, SQUARE, TRIANGLE = 1, 2, 3
COUNT = 800  # images generated; val_fraction of them validate
MAX_SHAPES = 3
SIZE_RANGE = (0.10, 0.20)  # equal-area radius, as a fraction of the image side
# Inradius (square, triangle) per unit of equal-area radius: pi r^2 = 4 a^2 = 3 sqrt(3) a^2.
INRADIUS = {SQUARE: math.sqrt(math.pi) / 2, TRIANGLE: math.sqrt(math.pi / (3 * math.sqrt(3)))}
# Farthest point from the centre per unit radius, to keep shapes inside the image.
EXTENT = np.array([0.0, 1.0, INRADIUS[SQUARE] * math.sqrt(2), INRADIUS[TRIANGLE] * 2])
# Well-separated, saturated colours (max channel >= 200, min <= 60): each stands out
# from any grey background; shapes in one image get different ones.
PALETTE = np.array([
    (220, 50, 50), (50, 200, 60), (50, 80, 220), (230, 210, 40),
    (200, 60, 200), (40, 200, 210), (240, 140, 30), (120, 50, 200),
], dtype=np.float64)
# Centre distance, per unit of summed radii, that placement aims for: < 1 lets shapes overlap a little.
CLEARANCE = 0.8
CHUNK = 128  # images rendered at once: bounds memory at large image sizes


@dataclass
class ShapeScenes:
    """Generated images, masks and the shapes that made them.

    Shape arrays are ``[N, MAX_SHAPES]`` in painting order; ``kind`` 0 marks an
    unused slot. Coordinates are in pixels, with pixel ``(i, j)`` centred at
    ``(x, y) = (j + 0.5, i + 0.5)``. Squares and triangles are regular polygons:
    their edges' outward normals point at ``angle + 2 pi k / sides``, at distance
    ``inradius`` from the centre.
    """

    images: np.ndarray  # [N, 3, S, S] uint8
    masks: np.ndarray  # [N, S, S] uint8
    kind: np.ndarray  # [N, K] int
    cx: np.ndarray  # [N, K] float
    cy: np.ndarray
    radius: np.ndarray  # equal-area radius (a circle's radius)
    angle: np.ndarray  # radians
    colour: np.ndarray  # [N, K, 3] uint8


def inside(kind: np.ndarray, cx: np.ndarray, cy: np.ndarray, radius: np.ndarray, angle: np.ndarray,
           x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether pixel centres lie inside shapes.

    Shape arrays are ``[n, 1, 1]``; ``x`` is ``[1, 1, W]`` and ``y`` is ``[1, H, 1]``.
    Every test is a sum of a row term and a column term, so each costs one
    broadcast add per pixel: that keeps generation fast at large image sizes.
    """
    # float32 halves the memory traffic; positions stay exact to ~1e-5 pixels
    dx, dy = (x - cx).astype(np.float32), (y - cy).astype(np.float32)  # [n, 1, W], [n, H, 1]
    in_circle = dx * dx + dy * dy <= radius * radius
    sides = np.where(kind == TRIANGLE, 3, 4)
    inradius = radius * np.where(kind == TRIANGLE, INRADIUS[TRIANGLE], INRADIUS[SQUARE])
    # A regular polygon is where every edge's projection is <= the inradius. Four
    # projections serve both: a triangle's fourth normal repeats its first.
    reach = None
    for k in range(4):
        normal = angle + 2 * np.pi * k / sides
        projection = np.cos(normal).astype(np.float32) * dx + np.sin(normal).astype(np.float32) * dy
        reach = projection if reach is None else np.maximum(reach, projection, out=reach)
    return np.where(kind == CIRCLE, in_circle, reach <= inradius) & (kind > 0)


def _place(rng: np.random.Generator, count: int, size: int, kind: np.ndarray, radius: np.ndarray,
           tries: int = 12) -> tuple[np.ndarray, np.ndarray]:
    # Centres keep each shape inside the image; of `tries` candidates, take the first
    # far enough from earlier shapes (some overlap, rarely burial), else the clearest.
    cx = np.zeros((count, MAX_SHAPES))
    cy = np.zeros((count, MAX_SHAPES))
    for slot in range(MAX_SHAPES):
        margin = (EXTENT[kind[:, slot]] * radius[:, slot])[:, None] + 0.5
        span = np.maximum(size - 2 * margin, 0.0)
        x = margin + rng.random((count, tries)) * span
        y = margin + rng.random((count, tries)) * span
        clearance = np.full((count, tries), np.inf)
        for prev in range(slot):
            gap = np.hypot(x - cx[:, prev, None], y - cy[:, prev, None])
            gap = gap / (radius[:, slot, None] + radius[:, prev, None])
            clearance = np.minimum(clearance, np.where(kind[:, prev, None] > 0, gap, np.inf))
        ok = clearance >= CLEARANCE
        pick = np.where(ok.any(1), ok.argmax(1), clearance.argmax(1))
        rows = np.arange(count)
        cx[:, slot], cy[:, slot] = x[rows, pick], y[rows, pick]
    return cx, cy


def _background(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """Tinted grey with a linear gradient in a random direction and light noise: ``[n, 3, S, S]``."""
    base = (rng.uniform(70, 180, (count, 1, 1, 1)) + rng.uniform(-15, 15, (count, 3, 1, 1))).astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi, (count, 1, 1, 1))
    amplitude = rng.uniform(10, 30, (count, 1, 1, 1))
    ramp = np.linspace(-1.0, 1.0, size)
    gradient = (amplitude * np.cos(direction) * ramp + amplitude * np.sin(direction) * ramp[:, None]).astype(np.float32)
    # light noise, uniform in [-6, 6]: random bytes are far cheaper than normal draws
    canvas = np.frombuffer(rng.bytes(count * 3 * size * size), np.uint8).reshape(count, 3, size, size).astype(np.float32)
    canvas *= 12.0 / 255.0
    canvas += gradient - 6.0  # in place, broadcast: no full-size temporaries
    canvas += base
    return canvas


def generate_shapes(count: int, size: int, seed: int = 0, max_rotation: float = 0.0) -> ShapeScenes:
    """Generate ``count`` scenes of ``size`` x ``size`` pixels, deterministically from ``seed``.

    Args:
        count: Number of images.
        size: Image height and width in pixels.
        seed: Seeds everything random.
        max_rotation: Squares and triangles turn by up to this many radians either way.

    Example:
        >>> a, b = generate_shapes(2, 16, seed=1), generate_shapes(2, 16, seed=1)
        >>> bool((a.images == b.images).all() and (a.masks == b.masks).all())
        True
    """
    rng = np.random.default_rng(seed)
    shapes = rng.integers(1, MAX_SHAPES + 1, count)
    kind = rng.integers(1, 4, (count, MAX_SHAPES)) * (np.arange(MAX_SHAPES) < shapes[:, None])
    radius = rng.uniform(*SIZE_RANGE, (count, MAX_SHAPES)) * size
    upright = np.where(kind == TRIANGLE, np.pi / 2, 0.0)  # a triangle's base edge faces down (+y)
    angle = upright + rng.uniform(-1.0, 1.0, (count, MAX_SHAPES)) * max_rotation
    cx, cy = _place(rng, count, size, kind, radius)
    picks = np.argsort(rng.random((count, len(PALETTE))), axis=1)[:, :MAX_SHAPES]
    colour = np.clip(PALETTE[picks] + rng.uniform(-20, 20, (count, MAX_SHAPES, 3)), 0, 255).round()

    images = np.empty((count, 3, size, size), np.uint8)
    masks = np.zeros((count, size, size), np.uint8)
    centres = np.arange(size) + 0.5
    x, y = centres[None, None, :], centres[None, :, None]
    for start in range(0, count, CHUNK):  # chunks bound the memory of the full-size temporaries
        part = slice(start, start + CHUNK)
        image, mask = _background(rng, len(masks[part]), size), masks[part]
        for slot in range(MAX_SHAPES):
            k = kind[part, slot, None, None]
            hit = inside(k, cx[part, slot, None, None], cy[part, slot, None, None], radius[part, slot, None, None],
                         angle[part, slot, None, None], x, y)  # [n, S, S]
            np.copyto(mask, k.astype(np.uint8), where=hit)
            np.copyto(image, colour[part, slot, :, None, None].astype(np.float32), where=hit[:, None])
        np.clip(image, 0, 255, out=image)
        images[part] = np.rint(image)
    return ShapeScenes(images, masks, kind, cx, cy, radius, angle, colour.astype(np.uint8))


def build_shapes(config: DataConfig) -> DataBundle:
    """800 scenes at ``image_size`` from ``split_seed``; the last ``val_fraction`` validate."""
    scenes = generate_shapes(COUNT, config.image_size, seed=config.split_seed)
    masks = (scenes.masks > 0).astype(np.uint8) if config.binary else scenes.masks
    n_train = COUNT - round(COUNT * config.val_fraction)
    mean, std = config.norm(HALF, HALF)

    def part(rows: slice, train: bool) -> ArrayDataset:
        transform = BatchTransform(config.image_size, mean=mean, std=std, train=train, hflip=config.hflip,
                                   scale=config.scale)
        # copies: views would keep the whole generated arrays alive in every holder
        return ArrayDataset(np.ascontiguousarray(scenes.images[rows].transpose(0, 2, 3, 1)), masks[rows].copy(),
                            transform)

    names = ("background", "foreground") if config.binary else CLASS_NAMES
    return DataBundle(
        train=part(slice(0, n_train), True),
        val=part(slice(n_train, COUNT), False),
        num_classes=len(names),
        in_chans=3,
        class_names=names,
        task="segmentation",
    )
