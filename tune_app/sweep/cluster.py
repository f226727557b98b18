"""Where trials run: a private loopback Ray instance, or an existing cluster; what a trial may ask of it.

Ray is imported when a sweep connects, not with this module. Connecting is where users meet Ray's network and security defaults, so
those are decided here: loopback for local instances, the cluster's own auth mode for
remote ones, a dashboard only when asked.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SpecError
from . import compat

if TYPE_CHECKING:
    from ..spec import ResourcesSpec

LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _loopback_only() -> None:
    """Make a local Ray instance listen on 127.0.0.1 only, unless the user set LOOPBACK_ENV=1.

    On Linux Ray binds to the machine's address by default, which would open the
    instance to the network; with this variable at 0 it uses loopback. Ray reads it
    once, when first imported, so if Ray was imported before (a notebook, a test),
    the constant it read is updated too.
    """
    os.environ.setdefault(LOOPBACK_ENV, "0")
    if os.environ[LOOPBACK_ENV] == "0" and "ray" in sys.modules:
        compat.keep_imported_ray_on_loopback()


AUTH_MODE_ENV = "RAY_AUTH_MODE"


def _choose_auth_mode(address: str) -> None:
    """Set RAY_AUTH_MODE to what the cluster at ``address`` expects, unless the user chose one.

    Ray 2.60's ``ray start`` enables token auth when it finds a token, and a client needs
    RAY_AUTH_MODE=token to talk to it, which Ray does not infer. Guessing from a token
    file on this machine is not enough: a stale ~/.ray/auth_token next to a cluster
    without auth makes the driver connect while every trial actor is cancelled. So ask
    the cluster (see ``gcs_requires_token``); only when it cannot be asked (``auto``,
    ``ray://``, no grpc) fall back to "a token here means token mode". Ray's core reads
    the mode once, when first imported, so this runs before that.
    """
    if os.environ.get(AUTH_MODE_ENV):
        return
    needs_token = gcs_requires_token(address)
    if needs_token is None:
        needs_token = _token_available()
    elif needs_token and not _token_available():
        raise SpecError([("tune.address", f"the Ray cluster at {address!r} uses token authentication and this "
                                          f"machine has no token: copy the head node's ~/.ray/auth_token here "
                                          f"(or set RAY_AUTH_TOKEN)")])
    if needs_token:
        os.environ[AUTH_MODE_ENV] = "token"


def _token_available() -> bool:
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                or (Path.home() / ".ray" / "auth_token").is_file())


def gcs_requires_token(address: str, timeout: float = 5.0) -> bool | None:
    """Whether the GCS at ``host:port`` rejects a request without a token; None if unknown.

    One unauthenticated gRPC call (GetClusterId, empty request) answered without
    importing Ray: UNAUTHENTICATED means token auth, an answer means none.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or "://" in address:
        return None
    try:
        import grpc
    except ImportError:
        return None
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary("/ray.rpc.NodeInfoGcsService/GetClusterId",
                                   request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw)
        try:
            call(b"", timeout=timeout)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                return True
            return None  # unreachable or unexpected: ray.init reports it in its own words
    return False


def _connect(address: str, quiet: int, verbose: bool) -> None:
    import ray

    try:
        ray.init(address=address, logging_level=quiet, log_to_driver=verbose)
    except ConnectionError as exc:
        mode = os.environ.get(AUTH_MODE_ENV, "unset")
        raise SpecError([("tune.address", f"could not connect to the Ray cluster at {address!r} ({exc}). Check the "
                                          f"address (ray status on the head node prints it). If the cluster uses "
                                          f"token authentication (Ray 2.60's ray start enables it), this machine "
                                          f"needs its token: copy the head node's ~/.ray/auth_token here (or set "
                                          f"RAY_AUTH_TOKEN) and set RAY_AUTH_MODE=token (now: {mode}).")]) from None


def dashboard_address(dashboard: bool | str) -> tuple[str, int]:
    """``true`` -> loopback on Ray's usual port; ``"host"`` or ``"host:port"`` as given."""
    if dashboard is True:
        return "127.0.0.1", 8265
    host, _, port = str(dashboard).rpartition(":") if ":" in str(dashboard) else (str(dashboard), "", "")
    return host or "127.0.0.1", int(port) if port else 8265


class RaySession:
    """The Ray instance a command's sweeps run on: :meth:`start` connects to ``address`` or starts a private
    local instance, :meth:`stop` shuts down what :meth:`start` started.

    Where Ray was already initialized (a test, a notebook), the caller manages it and both do
    nothing. Both belong in the main thread: Ray's driver keeps its state there, and the
    processes of a local instance die with the thread that spawned them (Linux's parent-death
    signal), so the work that overlaps them (building the data, writing the reports) is what
    runs in a thread of its own (:class:`~tune_app.sweep.lifecycle.Experiment`).

    The local instance listens on loopback only and runs no dashboard unless asked; an
    asked-for dashboard listens on 127.0.0.1 unless given another address.
    """

    def __init__(self, address: str | None, *, verbose: bool = False, dashboard: bool | str = False,
                 echo: Callable[[str], None] = print) -> None:
        self.address, self.verbose, self.dashboard, self.echo = address, verbose, dashboard, echo
        self.owned = False  # whether start() connected Ray, so that stop() shuts it down

    def start(self) -> RaySession:
        if not self.address:
            _loopback_only()  # a sweep on a laptop must not open a cluster to the network
        else:
            _choose_auth_mode(self.address)  # before Ray's first import: its core reads the mode once
        import ray

        if ray.is_initialized():  # the caller manages Ray (e.g. a test or a notebook)
            return self
        quiet = logging.INFO if self.verbose else logging.ERROR
        if self.address:
            _connect(self.address, quiet, self.verbose)
        elif self.dashboard:
            host, port = dashboard_address(self.dashboard)
            try:
                ray.init(address="local", include_dashboard=True, dashboard_host=host, dashboard_port=port,
                         logging_level=quiet, log_to_driver=self.verbose)
            except Exception as exc:  # Ray raises a bare Exception when its dashboard packages are missing
                if "missing packages" not in str(exc):
                    raise
                raise SpecError([("tune.dashboard", "the Ray dashboard needs Ray's default extras: "
                                                    "pip install 'tune-app[dashboard]' (or 'ray[default]')")]) from None
            self.echo(f"Ray dashboard: http://{host}:{port}")
        else:
            ray.init(address="local", include_dashboard=False, logging_level=quiet, log_to_driver=self.verbose)
        self.owned = True
        return self

    def stop(self) -> None:
        if self.owned:
            import ray

            self.owned = False
            ray.shutdown()


@contextmanager
def ray_session(address: str | None, verbose: bool = False, dashboard: bool | str = False,
                echo: Callable[[str], None] = print) -> Iterator[None]:
    """Connect to ``address``, or start a private local Ray instance, for the block; shut down what we started."""
    session = RaySession(address, verbose=verbose, dashboard=dashboard, echo=echo).start()
    try:
        yield
    finally:
        session.stop()


def trial_resources(wanted: ResourcesSpec) -> dict[str, float]:
    """Resources per trial, checked against the cluster: a request no node can meet is an error now.

    ``gpu: auto`` becomes one GPU per trial when the cluster has GPUs, else none.
    """
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    gpu = wanted.gpu
    if gpu == "auto":
        gpu = 1.0 if any(n.get("GPU", 0) >= 1 for n in nodes) else 0.0
    if not any(n.get("CPU", 0) >= wanted.cpu and n.get("GPU", 0) >= gpu for n in nodes):
        have = ", ".join(f"{n.get('CPU', 0):g} CPU / {n.get('GPU', 0):g} GPU" for n in nodes) or "no live nodes"
        raise SpecError([("tune.resources", f"each trial asks for {wanted.cpu:g} CPU and {gpu:g} GPU, but no node "
                                            f"of the cluster has that much (nodes: {have}); trials would wait forever")])
    return {"cpu": float(wanted.cpu), "gpu": float(gpu)}


def unshared_storage_warning(nodes: list[dict], storage: str) -> str | None:
    """What to say when the cluster spans machines and ``storage`` is a local path (``nodes``: ``ray.nodes()``).

    Each node writes its trials' checkpoints under the storage path on its own disk; a trial
    restarted on another machine (a lost node) then finds no checkpoint unless the path is a
    filesystem every machine shares. Nodes on one machine (one address) share its disk.
    """
    machines = sorted({node["NodeManagerAddress"] for node in nodes
                       if node.get("Alive") and node.get("NodeManagerAddress")})
    if len(machines) < 2 or "://" in storage:
        return None
    return (f"warning: the cluster's nodes are on {len(machines)} machines ({', '.join(machines)}) and the storage "
            f"{storage} is a local path: it must be a filesystem every machine shares at that path (NFS and the "
            f"like), or a trial restarted on another machine cannot find its checkpoints; otherwise use a URI "
            f"such as s3://bucket/tune")
