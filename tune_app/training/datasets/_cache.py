"""Decode once per node: a folder's images as uint8 squares in one memory-mapped file.

Each image is decoded once, its shorter side resized to the stored side ``S`` and its
centre square kept (placed so that the square's centre ``image_size`` crop is timm's
validation crop) (masks the same way, nearest neighbour), and written into
``images.u8`` (``[N, S, S, 3]``, and ``masks.u8``, ``[N, S, S]``) under the node's cache
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

import fcntl
import hashlib
import json
import math
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ...caches import cache_home
from . import imaging
from .imaging import decode_into

# A worker runs imaging.py by its path: `python -m tune_app.training.datasets.imaging` would import the
# training package (torch, timm) first, seconds per worker, for a module that needs PIL and NumPy only.
_WORKER = "import runpy, sys; runpy.run_path(sys.argv.pop(1), run_name='__main__')"

VERSION = 2  # 2: images decoded upright, high bit depth scaled, colour-managed, JPEGs drafted
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
    return cache_home() / "images"


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
        """``[N, S, S, 3]``: channels last, so one image's crop is one block of the file."""
        return (self.count, self.side, self.side, 3)

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
        chunks = [{"rows": rows, "images": [self.image_paths[i] for i in rows],
                   "masks": None if self.mask_paths is None else [self.mask_paths[i] for i in rows]}
                  for rows in (list(range(i, min(i + CHUNK, self.count))) for i in range(0, self.count, CHUNK))]
        task = {"directory": str(partial), "shape": list(self.image_shape()), "crop": self.crop,
                "interpolation": self.interpolation}
        workers = max(1, min(_cpus(), self.count // PER_WORKER))
        if echo:
            echo(f"decoding {self.count} images once into the image cache {self.path} ({self.nbytes / 2**20:.0f} "
                 f"MB at {self.side}x{self.side}) with {workers} process{'es' * (workers > 1)}")
        bad: dict[int, str] = {}
        values: dict[int, list] = {}
        progress = _Progress(self.count, echo, start)
        if workers == 1:
            results: Iterator[dict] = (decode_into(**task, **chunk) for chunk in chunks)
        else:
            results = _in_processes(task, [chunks[w::workers] for w in range(workers)], partial)
        for result in results:
            if result["mismatched"]:  # a mask that does not fit its image is a mistake in the data
                raise ValueError(result["mismatched"][0])
            bad.update({int(k): v for k, v in result["bad"].items()})
            values.update({int(k): v for k, v in result["values"].items()})
            progress.add(result["done"])
        progress.finish()
        return bad, values


def _in_processes(task: dict, shares: list[list[dict]], partial: Path) -> Iterator[dict]:
    """Each share of chunks decoded by a worker process running :mod:`.imaging`; results as they come.

    Separate interpreters, not a multiprocessing pool: a fork of a process running trial
    threads (Ray's, torch's) can deadlock, and spawn re-runs the user's main script.
    """
    events: queue.Queue = queue.Queue()
    procs = []
    for w, share in enumerate(shares):
        task_file = partial / f"task-{w}.json"
        task_file.write_text(json.dumps({**task, "chunks": share}))
        proc = subprocess.Popen([sys.executable, "-c", _WORKER, imaging.__file__, str(task_file)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_worker_env())
        procs.append(proc)
        threading.Thread(target=_relay, args=(proc, events), daemon=True).start()
    running = len(procs)
    try:
        while running:
            kind, payload = events.get()
            if kind == "result":
                yield payload
            elif kind == "failed":
                raise RuntimeError(f"an image cache worker failed: {payload}")
            else:
                running -= 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for w in range(len(shares)):
            (partial / f"task-{w}.json").unlink(missing_ok=True)


def _relay(proc: subprocess.Popen, events: queue.Queue) -> None:
    assert proc.stdout is not None and proc.stderr is not None
    for line in proc.stdout:
        events.put(("result", json.loads(line)))
    code = proc.wait()
    events.put(("failed", proc.stderr.read()[-2000:] or f"exit code {code}") if code else ("done", None))


def _worker_env() -> dict[str, str]:
    """This environment, with this package importable (also when it runs from a checkout)."""
    package_parent = str(Path(__file__).resolve().parents[3])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": package_parent + (os.pathsep + path if path else "")}


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

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    def array(self) -> np.memmap:
        if self._mapped is None:
            self.cache.ensure()  # on another node: build (or find) that node's copy
            # copy-on-write: views are writable for torch (which warns on read-only arrays), pages stay shared
            self._mapped = np.memmap(self.cache.path / f"{self.name}.u8", np.uint8, "c", shape=self.shape)
        return self._mapped

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.array()[index]
