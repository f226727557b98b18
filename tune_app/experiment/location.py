"""Where an experiment lives: a local directory, or a URI Ray understands (s3://, gs://, file://).

Ray Tune writes its own files to either. tune-app's files (``spec.yaml``, the reports)
are written next to them; the reports are built from a local directory, so for a URI a
local mirror holds the small files (results, parameters, errors: never checkpoints),
pulled before and pushed after each report.

Example:
    >>> here = Location("/data/tune_results", "quickstart")   # Location.create also checks it is new
    >>> here.local, here.remote
    (PosixPath('/data/tune_results/quickstart'), None)
    >>> Location("s3://bucket/tune", "quickstart").remote
    's3://bucket/tune/quickstart'
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..caches import cache_home
from ..errors import SpecError

# Folders of a trial that hold weights, not results: never copied to the mirror.
_HEAVY = ("checkpoint_", "driver_artifacts")
# Files only the driver writes, always locally (SQLite cannot live on an object store): pushed with
# the reports, pulled only into a mirror that lacks them (the driver's own copy is the newest).
DRIVER_FILES = ("optuna.db", "mlflow.db")


def is_uri(text: str) -> bool:
    return "://" in text


def mirror_root() -> Path:
    """Local mirrors of remote experiments (``TUNE_APP_CACHE`` or ~/.cache/tune-app)."""
    return cache_home() / "experiments"


@dataclass(frozen=True)
class Location:
    """An experiment's place: ``storage`` and ``name`` as Ray gets them, ``local`` for tune-app's files."""

    storage: str  # a local directory or a URI
    name: str

    # ------------------------------------------------------------ opening
    @classmethod
    def create(cls, storage: str, name: str) -> Location:
        """A new experiment; raises SpecError if something already exists there (it is never reused)."""
        location = cls(storage if is_uri(storage) else str(Path(storage).expanduser().resolve()), name)
        if location.remote is None:
            path = location.local
            if path.exists() or path.is_symlink():  # a symlink could lead anywhere: never follow it
                raise SpecError([("name", f"the experiment directory {path} already exists; choose another name "
                                          f"with --name, or remove the directory")])
        else:
            fs, path = location._filesystem()
            if fs.get_file_info(path).type != _not_found():
                raise SpecError([("name", f"{location.remote} already exists; choose another name with --name")])
            shutil.rmtree(location.local, ignore_errors=True)  # a stale mirror of an experiment now gone
        return location

    @classmethod
    def open(cls, text: str) -> Location:
        """An existing experiment, from its directory or URI; pulls a remote one's files."""
        text = text.rstrip("/")
        if is_uri(text):
            storage, _, name = text.rpartition("/")
            location = cls(storage, name)
            location.pull()
        else:
            path = Path(text).expanduser().resolve()
            location = cls(str(path.parent), path.name)
        if not (location.local / "spec.yaml").is_file():
            raise SpecError(f"{text} is not a tune-app experiment directory (it has no spec.yaml)")
        return location

    # ---------------------------------------------------------------- paths
    @property
    def remote(self) -> str | None:
        """The experiment's URI, or None for a local directory."""
        return f"{self.storage.rstrip('/')}/{self.name}" if is_uri(self.storage) else None

    @property
    def local(self) -> Path:
        """The experiment directory itself, or the local mirror of a remote one."""
        if self.remote is None:
            return Path(self.storage) / self.name
        digest = hashlib.sha256(self.remote.encode()).hexdigest()[:12]
        return mirror_root() / f"{self.name}-{digest}"

    def __str__(self) -> str:
        return self.remote or str(self.local)

    # ---------------------------------------------------------------- files
    def write_text(self, relative: str, text: str) -> Path:
        """Write a file of tune-app's into the experiment (and its mirror)."""
        path = self.local / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self.push([path])
        return path

    def pull(self) -> None:
        """Copy the remote experiment's small files into the mirror (no checkpoints)."""
        if self.remote is None:
            return
        import pyarrow.fs as pafs

        fs, root = self._filesystem()
        if fs.get_file_info(root).type == _not_found():
            raise SpecError(f"nothing at {self.remote}")
        for info in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
            relative = info.path[len(root):].lstrip("/")
            if info.type != pafs.FileType.File or any(part.startswith(_HEAVY) for part in relative.split("/")):
                continue
            target = self.local / relative
            if relative in DRIVER_FILES and target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(info.path) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)

    def push(self, paths: Iterable[Path], base: Path | None = None) -> None:
        """Upload files of the mirror (or of another copy of the experiment at ``base``) to the remote
        experiment (nothing to do for a local one)."""
        if self.remote is None:
            return
        fs, root = self._filesystem()
        for path in paths:
            relative = Path(path).relative_to(base or self.local).as_posix()
            fs.create_dir(f"{root}/{relative}".rsplit("/", 1)[0], recursive=True)
            with open(path, "rb") as source, fs.open_output_stream(f"{root}/{relative}") as sink:
                shutil.copyfileobj(source, sink)

    def driver_files(self) -> list[Path]:
        """The driver's own files that exist (``optuna.db``, ``mlflow.db``), for :meth:`push`."""
        return [self.local / name for name in DRIVER_FILES if (self.local / name).is_file()]

    def push_tree(self, directory: Path) -> None:
        """Bring the small files of a newer local copy of the experiment (no checkpoints) into it: uploaded
        to a remote experiment, copied into a local one."""
        files = [p for p in directory.rglob("*") if p.is_file()
                 and not any(part.startswith(_HEAVY) for part in p.relative_to(directory).parts)]
        if self.remote is not None:
            self.push(files, base=directory)
            return
        for path in files:
            target = self.local / path.relative_to(directory)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)

    def filesystem(self):
        """The experiment's pyarrow filesystem and its path there: where Ray's files and checkpoints live."""
        if self.remote is None:
            import pyarrow.fs as pafs

            return pafs.LocalFileSystem(), str(self.local)
        return self._filesystem()

    def _filesystem(self):
        import pyarrow.fs as pafs

        try:
            return pafs.FileSystem.from_uri(self.remote)
        except Exception as exc:  # pyarrow raises its own types for unknown schemes and missing credentials
            raise SpecError([("tune.storage", f"cannot open {self.remote}: {exc}")]) from None


def _not_found():
    import pyarrow.fs as pafs

    return pafs.FileType.NotFound
