"""Decode once per node: a folder's images as uint8 squares in one memory-mapped file.

Each image is decoded once, its shorter side resized to the stored side ``S`` and its
centre square kept (placed so that the square's centre ``image_size`` crop is timm's
validation crop) (masks the same way, nearest neighbour), and written into
``images.u8`` (``[N, 3, S, S]``, and ``masks.u8``, ``[N, S, S]``) under the node's cache
directory (``data.cache_dir``, else ``$TUNE_APP_CACHE/images``, else
``~/.cache/tune-app/images``). Every trial on the node maps the same files read-only, so
the page cache holds one copy however many trials run.

The directory is named by a key over the file list (relative paths, sizes, modification
times), ``S``, the validation crop and the interpolation: a changed, added or removed file makes a new cache.
The first process to need a cache builds it under a file lock, with a process pool over
the node's CPUs, reporting images/s and the time left; the others wait, then map it.
Old caches beyond the size cap are removed, least recently used first.

Example:
    >>> stored_side(224, 0.875), stored_side(64, 0.875)
    (256, 73)
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import socket
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ._decode import load_mask, load_rgb, square, square_mask

VERSION = 1
CHUNK = 64  # images per task of the decoding pool
PER_WORKER = 256  # at least this many images per extra process: small folders decode in-process
Echo = Callable[[str], None]


def stored_side(image_size: int, crop_pct: float) -> int:
    """``S = floor(image_size / crop_pct)``: the square kept of every image; its centre crop validates.

    timm's validation resize, so the stored square's centre crop is what timm's own
    ``create_transform(..., crop_pct=crop_pct)`` gives, pixel for pixel.
    """
    return max(image_size, math.floor(round(image_size / crop_pct, 6)))


def cache_root(cache_dir: str | None = None) -> Path:
    """Where caches live on this node: ``cache_dir``, ``$TUNE_APP_CACHE/images`` or ``~/.cache/tune-app/images``."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("TUNE_APP_CACHE") or Path.home() / ".cache" / "tune-app") / "images"


def default_echo(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class BadImagesError(ValueError):
    """Images that cannot be read; ``bad`` maps each one's path to the reason."""

    def __init__(self, bad: dict[str, str], field: str = "data.train_dir") -> None:
        self.bad = bad
        first = list(bad.items())[:3]
        listed = "; ".join(f"{path} ({why})" for path, why in first)
        more = f"; and {len(bad) - len(first)} more" if len(bad) > len(first) else ""
        super().__init__(f"{field}: cannot read {len(bad)} image{'s' * (len(bad) != 1)}: {listed}{more}. Fix or "
                         f"remove {'them' if len(bad) > 1 else 'it'}, or set data.skip_bad_images: true to leave "
                         f"unreadable images out")


class FolderCache:
    """The decoded-once images (and masks) of a folder dataset on this node.

    Args:
        images: Image file paths, in the order of the cache's rows.
        masks: Mask file paths, one per image (segmentation), or None.
        roots: The folder each file is named relative to in the key (train_dir or val_dir).
        side: The stored side ``S``.
        crop: The validation crop the square centres (``image_size``).
        interpolation: PIL resampling of the resize (``bilinear``, ``bicubic``, ...).
        root: The cache directory (see :func:`cache_root`).
        max_bytes: The size cap of all caches in ``root``; older ones are removed beyond it.
    """

    def __init__(self, images: Sequence[str], masks: Sequence[str] | None, roots: Sequence[str], side: int,
                 crop: int, interpolation: str = "bilinear", root: Path | None = None,
                 max_bytes: float = 50e9) -> None:
        self.image_paths = list(images)
        self.mask_paths = None if masks is None else list(masks)
        self.side = side
        self.crop = crop
        self.interpolation = interpolation
        self.root = Path(root) if root is not None else cache_root()
        self.max_bytes = max_bytes
        self.key = _key(self.image_paths, self.mask_paths, list(roots), side, crop, interpolation)
        self.meta: dict[str, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "meta": None}  # each process reads the metadata of its own node's copy

    # ------------------------------------------------------------- facts
    @property
    def count(self) -> int:
        return len(self.image_paths)

    @property
    def path(self) -> Path:
        return self.root / self.key

    @property
    def nbytes(self) -> int:
        """Bytes the cache takes on disk: 3 S^2 per image, plus S^2 per mask."""
        per_image = 3 * self.side ** 2 + (self.side ** 2 if self.mask_paths is not None else 0)
        return self.count * per_image

    def image_shape(self) -> tuple[int, int, int, int]:
        return (self.count, 3, self.side, self.side)

    def exists(self) -> bool:
        return (self.path / "meta.json").is_file()

    @property
    def bad(self) -> dict[int, str]:
        """Row -> why that image could not be read (after :meth:`ensure`)."""
        return {int(k): v for k, v in self._meta()["bad"].items()}

    @property
    def mask_values(self) -> list[list[int]]:
        """Each mask's raw values (after :meth:`ensure`)."""
        return self._meta()["mask_values"]

    def _meta(self) -> dict[str, Any]:
        if self.meta is None:
            self.ensure()
        assert self.meta is not None
        return self.meta

    # ---------------------------------------------------------- building
    def ensure(self, echo: Echo | None = default_echo) -> bool:
        """Find this cache on the node or build it (once, under a lock); True if this call built it."""
        built = False
        if not self.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            with _locked(self.root / f"{self.key}.lock", echo, f"another process is building the image cache "
                                                                f"{self.path}; waiting for it"):
                if not self.exists():
                    self._build(echo)
                    built = True
            if built:
                prune(self.root, self.max_bytes, keep=self.key, echo=echo)
        self.meta = json.loads((self.path / "meta.json").read_text())
        try:
            os.utime(self.path / "meta.json")  # last use, for pruning
        except OSError:
            pass  # a read-only cache is still usable
        return built

    def _build(self, echo: Echo | None) -> None:
        partial = self.root / f"{self.key}.partial-{uuid.uuid4().hex[:8]}"
        partial.mkdir()
        try:
            start = time.monotonic()
            np.memmap(partial / "images.u8", np.uint8, "w+", shape=self.image_shape()).flush()
            if self.mask_paths is not None:
                np.memmap(partial / "masks.u8", np.uint8, "w+", shape=(self.count, self.side, self.side)).flush()
            bad, values = self._decode_all(partial, echo, start)
            meta = {"version": VERSION, "count": self.count, "side": self.side, "interpolation": self.interpolation,
                    "masks": self.mask_paths is not None, "bad": {str(i): why for i, why in sorted(bad.items())},
                    "mask_values": [values.get(i, []) for i in range(self.count)] if self.mask_paths else [],
                    "bytes": self.nbytes, "built_by": f"{socket.gethostname()}:{os.getpid()}",
                    "seconds": round(time.monotonic() - start, 3)}
            (partial / "meta.json").write_text(json.dumps(meta))
            os.replace(partial, self.path)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise

    def _decode_all(self, partial: Path, echo: Echo | None, start: float) -> tuple[dict[int, str], dict[int, list]]:
        chunks = [list(range(i, min(i + CHUNK, self.count))) for i in range(0, self.count, CHUNK)]
        tasks = [(str(partial), self.image_shape(), self.crop, self.interpolation, chunk,
                  [self.image_paths[i] for i in chunk],
                  None if self.mask_paths is None else [self.mask_paths[i] for i in chunk]) for chunk in chunks]
        workers = max(1, min(_cpus(), self.count // PER_WORKER))
        if echo:
            echo(f"decoding {self.count} images once into the image cache {self.path} ({self.nbytes / 2**20:.0f} "
                 f"MB at {self.side}x{self.side}) with {workers} process{'es' * (workers > 1)}")
        bad: dict[int, str] = {}
        values: dict[int, list] = {}
        progress = _Progress(self.count, echo, start)
        if workers == 1:
            results: Iterator[Any] = map(_decode_chunk, tasks)
            for result in results:
                progress.add(_merge(result, bad, values))
        else:
            # spawn: a fork of a process running trial threads (Ray's, torch's) can deadlock
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
                for result in pool.map(_decode_chunk, tasks):
                    progress.add(_merge(result, bad, values))
        progress.finish()
        return bad, values


def _merge(result: tuple[dict, dict, list, int], bad: dict[int, str], values: dict[int, list]) -> int:
    """Fold one chunk's outcome into ``bad`` and ``values``; the number of images it decoded."""
    chunk_bad, chunk_values, mismatched, count = result
    if mismatched:  # a mask that does not fit its image is a mistake in the data, not an unreadable file
        raise ValueError(mismatched[0])
    bad.update(chunk_bad)
    values.update(chunk_values)
    return count


def _decode_chunk(task: tuple) -> tuple[dict[int, str], dict[int, list], list[str], int]:
    """Decode the images (and masks) of one chunk into the cache files; runs in a pool process."""
    directory, shape, crop, interpolation, rows, images, masks = task
    count, _, side, _ = shape
    image_out = np.memmap(Path(directory) / "images.u8", np.uint8, "r+", shape=shape)
    mask_out = None if masks is None else np.memmap(Path(directory) / "masks.u8", np.uint8, "r+",
                                                    shape=(count, side, side))
    bad: dict[int, str] = {}
    values: dict[int, list] = {}
    mismatched: list[str] = []
    for k, row in enumerate(rows):
        try:
            image = load_rgb(images[k])
            image_out[row] = np.asarray(square(image, side, interpolation, crop)).transpose(2, 0, 1)
        except Exception as exc:  # PIL raises many kinds for truncated or foreign files
            bad[row] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        if mask_out is not None:
            mask = load_mask(masks[k])
            if mask.shape != (image.height, image.width):
                mismatched.append(f"mask {masks[k]} is {mask.shape[1]}x{mask.shape[0]} but image {images[k]} is "
                                  f"{image.width}x{image.height}")
                continue
            mask_out[row] = square_mask(mask, side, crop)
            values[row] = np.unique(mask).tolist()
    image_out.flush()
    if mask_out is not None:
        mask_out.flush()
    return bad, values, mismatched, len(rows)


class _Progress:
    """Images decoded, images/s and the time left, every couple of seconds and at the end."""

    def __init__(self, total: int, echo: Echo | None, start: float, every: float = 2.0) -> None:
        self.total, self.echo, self.start, self.every = total, echo, start, every
        self.done, self.last = 0, start

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.echo and now - self.last >= self.every and self.done < self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            self.echo(f"  image cache: {self.done}/{self.total} images, {rate:.0f} images/s, "
                      f"{(self.total - self.done) / max(rate, 1e-9):.0f} s left")

    def finish(self) -> None:
        if self.echo:
            seconds = time.monotonic() - self.start
            self.echo(f"  image cache: {self.total} images in {seconds:.1f} s "
                      f"({self.total / max(seconds, 1e-9):.0f} images/s)")


# ------------------------------------------------------------- helpers
def _key(images: list[str], masks: list[str] | None, roots: list[str], side: int, crop: int,
         interpolation: str) -> str:
    digest = hashlib.sha256(json.dumps({"version": VERSION, "side": side, "crop": crop,
                                        "interpolation": interpolation}).encode())
    for i, path in enumerate(images):
        for file in (path, masks[i]) if masks is not None else (path,):
            stat = os.stat(file)
            digest.update(f"{os.path.relpath(file, roots[i])}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextmanager
def _locked(path: Path, echo: Echo | None, waiting: str) -> Iterator[None]:
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if echo:
                echo(waiting)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prune(root: Path, max_bytes: float, keep: str, echo: Echo | None = None) -> list[Path]:
    """Remove the least recently used caches in ``root`` until they fit ``max_bytes``; never ``keep``.

    A cache whose lock another process holds (it is being built) is left alone.
    """
    caches = []
    for meta in root.glob("*/meta.json"):
        try:
            size = json.loads(meta.read_text()).get("bytes", 0)
            caches.append((meta.stat().st_mtime, meta.parent, size))
        except (OSError, ValueError):
            continue
    total = sum(size for _, _, size in caches)
    removed = []
    for _, directory, size in sorted(caches):
        if total <= max_bytes:
            break
        if directory.name == keep:
            continue
        lock = root / f"{directory.name}.lock"
        with open(lock, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(directory, ignore_errors=True)  # processes that map it keep their mapping
            fcntl.flock(handle, fcntl.LOCK_UN)
        lock.unlink(missing_ok=True)
        total -= size
        removed.append(directory)
        if echo:
            echo(f"removed the old image cache {directory} ({size / 2**20:.0f} MB) to stay within "
                 f"data.cache_max_gb ({max_bytes / 1e9:g} GB)")
    return removed


class CachedArray:
    """One file of a :class:`FolderCache` as an array: mapped (read-only) on first use, in each process."""

    def __init__(self, cache: FolderCache, name: str) -> None:
        self.cache = cache
        self.name = name
        self._mapped: np.memmap | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"cache": self.cache, "name": self.name, "_mapped": None}

    @property
    def shape(self) -> tuple[int, ...]:
        side = self.cache.side
        return self.cache.image_shape() if self.name == "images" else (self.cache.count, side, side)

    def __len__(self) -> int:
        return self.cache.count

    def array(self) -> np.memmap:
        if self._mapped is None:
            self.cache.ensure()  # on another node: build (or find) that node's copy
            self._mapped = np.memmap(self.cache.path / f"{self.name}.u8", np.uint8, "r", shape=self.shape)
        return self._mapped

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.array()[index]
