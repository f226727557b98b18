"""Where trials run: the private local instance stays on loopback; existing clusters, with or without token auth."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tune_app.sweep.cluster import gcs_requires_token, unshared_storage_warning

from ..conftest import result_lines, write_spec
from ..processes import kill_session, session_processes, wait_for

pytestmark = pytest.mark.ray

RAY_CLI = str(Path(sys.executable).with_name("ray"))


def _listening() -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket on this machine, from /proc."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A":  # LISTEN
                    address, port = local.split(":")
                    found.add((address, int(port, 16)))
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


@pytest.mark.parametrize("dashboard", [False, True], ids=["no-dashboard", "dashboard"])
def test_the_local_ray_instance_listens_on_loopback_only(dashboard):
    # Ray imported first and the variable unset: the worst case for binding.
    script = (
        "import ray, time\n"
        "from tune_app.sweep.cluster import ray_session\n"
        f"with ray_session(None, dashboard={dashboard}):\n"
        "    ray.get(ray.remote(lambda: 1).remote())\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(8)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    before = _listening()
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline().strip()]
        if dashboard:
            assert lines[0] == "Ray dashboard: http://127.0.0.1:8265"
            lines.append(proc.stdout.readline().strip())
        assert lines[-1] == "ready"
        opened = _listening() - before
    finally:
        proc.wait(timeout=120)
    assert opened, "Ray opened no listening socket?"
    assert {address for address, _ in opened} <= LOOPBACK, opened
    assert (8265 in {port for _, port in opened}) == dashboard  # the dashboard only when asked for


def _home_with_token(path: Path, token: str | None) -> Path:
    """A home directory for a process: ~/.ray/auth_token holds ``token`` (or there is none)."""
    path.mkdir()
    if token is not None:
        (path / ".ray").mkdir()
        (path / ".ray" / "auth_token").write_text(token)
    return path


def _client_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: their own home, no RAY_AUTH_MODE chosen."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    return {**env, "HOME": str(home), **extra}


def test_the_auth_probe_leaves_addresses_it_cannot_ask_to_ray():
    assert gcs_requires_token("auto") is None
    assert gcs_requires_token("ray://127.0.0.1:10001") is None
    assert gcs_requires_token("127.0.0.1:1", timeout=2) is None  # nothing listens there


def _node(address: str, alive: bool = True) -> dict:
    """One entry of ray.nodes() (the fields the check reads)."""
    return {"NodeManagerAddress": address, "Alive": alive, "Resources": {"CPU": 1.0}}


def test_a_local_storage_path_on_a_cluster_of_several_machines_is_warned_about():
    two_machines = [_node("10.0.0.1"), _node("10.0.0.2"), _node("10.0.0.3", alive=False)]
    warning = unshared_storage_warning(two_machines, "/home/me/tune_results")
    assert "on 2 machines (10.0.0.1, 10.0.0.2)" in warning and "/home/me/tune_results is a local path" in warning
    assert "s3://" in warning
    assert unshared_storage_warning(two_machines, "s3://bucket/tune") is None  # every node reaches a URI
    # nodes on one machine (the loopback clusters of these tests) share its disk
    assert unshared_storage_warning([_node("127.0.0.1"), _node("127.0.0.1")], "/home/me/tune_results") is None


def test_search_on_an_existing_two_node_cluster_uses_both_nodes(tmp_path, tiny_spec_data):
    from ray.cluster_utils import Cluster

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # keep the test cluster on loopback
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        assert gcs_requires_token(cluster.address) is False
        tiny_spec_data["name"] = "cluster"
        tiny_spec_data["train"]["epochs"] = 2
        tiny_spec_data["tune"].update(num_samples=4, scheduler="fifo", max_concurrent=2)
        spec = write_spec(tmp_path / "cluster.yaml", tiny_spec_data)
        # A token left over from some other cluster must not switch this client to token auth:
        # the cluster has none, and a token-mode driver would see every trial actor cancelled.
        home = _home_with_token(tmp_path / "home", secrets.token_hex(32))
        result = subprocess.run([sys.executable, "-m", "tune_app", "search", str(spec), "--storage",
                                 str(tmp_path / "runs"), "--address", cluster.address],
                                capture_output=True, text=True, timeout=600, env=_client_env(home))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "is a local path" not in result.stdout  # both nodes on this machine: its disk is shared
        history = pd.read_csv(tmp_path / "runs" / "cluster" / "history.csv")
        assert history["node_id"].nunique() == 2, history["node_id"].value_counts()
    finally:
        cluster.shutdown()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _ray_start_head(home: Path, cpus: int):
    """A head node started with `ray start` from ``home``; a token there turns token auth on.

    Yields its address; the cluster is stopped by its session id.
    """
    port = _free_port()
    env = {**_client_env(home), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    head = subprocess.Popen([RAY_CLI, "start", "--head", f"--port={port}", f"--num-cpus={cpus}",
                             "--include-dashboard=false", "--block"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: any("gcs_server" in Path(f"/proc/{pid}/cmdline").read_text(errors="ignore")
                             for pid in session_processes(head.pid) if Path(f"/proc/{pid}/cmdline").exists()),
                 60, "the head node's GCS", head)
        address = f"127.0.0.1:{port}"
        wait_for(lambda: gcs_requires_token(address, timeout=2) is not None, 60, "the GCS to answer", head)
        yield address
    finally:
        kill_session(head.pid)
        head.wait(timeout=30)


@pytest.fixture
def token_cluster(tmp_path):
    """A `ray start` head node on a machine holding a token: (address, the head's home directory).

    Its own home keeps the token out of the tester's ~/.ray.
    """
    home = _home_with_token(tmp_path / "head-home", secrets.token_hex(32))
    with _ray_start_head(home, cpus=2) as address:
        yield address, home


# `ray start --address` for a second node on this machine, kept on loopback. Ray's CLI refuses
# a worker node while RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 and rewrites a 127.0.0.1 head
# address to the machine's external IP (for nodes on other machines), where this head does not
# listen: both are switched off here, and only here; the rest is the CLI as a user runs it.
_WORKER_NODE = (
    "import sys\n"
    "import ray._private.ray_constants as constants, ray._private.services as services\n"
    "constants.ENABLE_RAY_CLUSTER = True\n"
    "services.resolve_ip_for_localhost = lambda host: host\n"
    "from ray.scripts.scripts import main\n"
    "sys.argv = ['ray', 'start', '--address=' + sys.argv[1], '--num-cpus=1', '--node-ip-address=127.0.0.1',\n"
    "            '--block']\n"
    "main()\n"
)


def _raylet_node_id(session: int) -> str | None:
    """The node id the raylet of a `ray start` session was given (its ``--node_id=`` argument)."""
    for pid in session_processes(session):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
        except OSError:
            continue
        if argv and argv[0].endswith("/raylet"):
            return next((a.split("=", 1)[1] for a in argv if a.startswith("--node_id=")), None)
    return None


@pytest.mark.timeout(600)
def test_a_trial_that_loses_its_node_continues_from_its_checkpoint(tmp_path, tiny_spec_data):
    home = _home_with_token(tmp_path / "home", secrets.token_hex(32))
    env = {**_client_env(home), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    with _ray_start_head(home, cpus=1) as address:
        worker = subprocess.Popen([sys.executable, "-c", _WORKER_NODE, address], env={**env, "RAY_AUTH_MODE": "token"},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        driver = None
        try:
            worker_node = wait_for(lambda: _raylet_node_id(worker.pid), 60, "the worker node's raylet", worker)
            tiny_spec_data["name"] = "lost"
            tiny_spec_data["train"]["epochs"] = 6  # 4 epochs to go after the 2 seen: time to kill the node first
            tiny_spec_data["tune"].update(num_samples=4, scheduler="fifo", max_concurrent=2, max_failures=2)
            spec = write_spec(tmp_path / "lost.yaml", tiny_spec_data)
            experiment = tmp_path / "runs" / "lost"
            driver = subprocess.Popen([sys.executable, "-m", "tune_app", "search", str(spec), "--storage",
                                       str(tmp_path / "runs"), "--address", address], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

            def running_on_worker() -> list[str]:
                # a trial with 2 epochs (and their checkpoints) reported from the worker node, and more to go
                return [name for name, rows in result_lines(experiment).items()
                        if len(rows) >= 2 and rows[-1]["node_id"] == worker_node and rows[-1]["epoch"] < 6]

            lost = wait_for(running_on_worker, 300, "a trial to report 2 epochs on the worker node", driver)[0]
            kill_session(worker.pid)  # every process of the node at once: raylet, its agents, the trial's worker
            output, _ = driver.communicate(timeout=400)
        finally:
            kill_session(worker.pid)
            if driver is not None and driver.poll() is None:
                kill_session(driver.pid)
    assert driver.returncode == 0, output
    results = pd.read_csv(experiment / "results.csv")
    assert (results["status"] == "TERMINATED").all() and (results["epochs"] == 6).all(), results
    history = pd.read_csv(experiment / "history.csv")
    assert (history.groupby("trial_id")["epoch"].apply(sorted) == pd.Series([list(range(1, 7))] * 4).values).all()
    trial = lost.split("_")[2]
    rows = history[history["trial_id"] == trial].set_index("epoch")
    restored = rows.loc[rows["node_id"] != worker_node, "restored_from_epoch"]
    # it went on elsewhere from the checkpoint of an epoch it reported on the lost node, not from scratch
    assert restored.min() >= 2 and set(rows.loc[: restored.min(), "node_id"]) == {worker_node}, rows
    assert results.set_index("trial_id").loc[trial, "restarts"] == 1
    assert f"{trial}" in (experiment / "report.md").read_text().split("## Restarted trials")[1]


def test_search_connects_to_a_ray_start_cluster_with_token_auth(tmp_path, tiny_spec_data, token_cluster):
    address, head_home = token_cluster
    assert gcs_requires_token(address) is True
    tiny_spec_data["name"] = "remote"
    tiny_spec_data["train"]["epochs"] = 1
    tiny_spec_data["tune"].update(num_samples=2, scheduler="fifo")
    spec = write_spec(tmp_path / "remote.yaml", tiny_spec_data)
    command = [sys.executable, "-m", "tune_app", "search", str(spec), "--storage", str(tmp_path / "runs"),
               "--address", address]
    # The head's token copied to this machine, no RAY_AUTH_MODE set: as the docs tell a user.
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=_client_env(head_home))
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(pd.read_csv(tmp_path / "runs" / "remote" / "results.csv")) == 2

    # No token on this machine: said before Ray starts, with the fix.
    tokenless = _home_with_token(tmp_path / "tokenless", None)
    missing = subprocess.run([*command, "--name", "missing"], capture_output=True, text=True, timeout=600,
                             env=_client_env(tokenless))
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert "uses token authentication and this machine has no token" in missing.stderr
    assert "Traceback" not in missing.stderr

    # Auth turned off on this side by the user: Ray refuses, and the error says how to fix it.
    refused = subprocess.run([*command, "--name", "refused"], capture_output=True, text=True, timeout=600,
                             env=_client_env(head_home, RAY_AUTH_MODE="disabled"))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "set RAY_AUTH_MODE=token" in refused.stderr and "Traceback" not in refused.stderr
