"""A local Ray cluster started by the tests themselves: 127.0.0.1 only, no dashboard, no usage
stats, token authentication with a token of its own (nothing written to ~/.ray), its own temp
directory; stopped at the end, and no process of it may outlive the session."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACCESS = "u-8105f7322477/test"
TIGHT = "u-8105f7322477/tight"
USER_KEY = "user-" + secrets.token_hex(16)
ADMIN_KEY = "admin-" + secrets.token_hex(16)
APP = "modelservice"
# One thread per replica and small contexts: quick on two shared cores.
SMALL = {"context_length": 1024, "slots": 4}

# Before Ray is imported: these are read by Ray's processes and by the ingress, which inherit them.
os.environ.update(
    RAY_USAGE_STATS_ENABLED="0",
    RAY_AUTH_MODE="token",
    RAY_AUTH_TOKEN=secrets.token_hex(32),
    MODELSERVICE_API_KEYS=USER_KEY,
    MODELSERVICE_ADMIN_KEYS=ADMIN_KEY,
)

import ray  # noqa: E402
from ray import serve  # noqa: E402


def model_path() -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "fetch-models"), "smollm2"], check=True, capture_output=True, text=True
    ).stdout
    name, path = out.strip().split("\t")
    assert name == "smollm2"
    return path


@functools.lru_cache
def sha256_of(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def config(model: str, num_cpus: float = 1) -> dict[str, Any]:
    """The builder's args: two groups, `smol` (the main one, replicas of `num_cpus` each; the count
    is set by the Serve config's `deployments` section) and `tight` (one replica that takes one
    request and queues one more, for the 429)."""
    # The replicas check the model file against its SHA-256 before loading it.
    smol = {"name": "test", "access_name": ACCESS, "model": model, "sha256": sha256_of(model), **SMALL}
    tight = {"name": "tight", "access_name": TIGHT, "model": model, "slots": 1, "context_length": 512}
    return {
        "groups": [
            {"name": "smol", "num_cpus": num_cpus, "graceful_shutdown_timeout_s": 120, "services": [smol]},
            {"name": "tight", "num_cpus": 0, "max_ongoing_requests": 1, "max_queued_requests": 1, "services": [tight]},
        ]
    }


@dataclass
class Cluster:
    base_url: str
    model: str
    temp_dir: str
    started_s: float  # from ray.init to the first answer of the ingress
    num_cpus: float  # per replica of the main group
    port: int
    gcs_address: str

    def answers(self) -> bool:
        request = urllib.request.Request(self.base_url + "/models", headers={"Authorization": f"Bearer {USER_KEY}"})
        try:
            with urllib.request.urlopen(request, timeout=5):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def admin(self, path: str) -> Any:
        request = urllib.request.Request(self.base_url + path, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def replicas(self, group: str = "smol") -> list[dict[str, Any]]:
        return list(self.admin("/replicas")["groups"][group])

    def deploy(self, replicas: int) -> None:
        """As users do: `serve run` on a Serve config file whose `deployments` section sets the
        replica count, so changing only that count scales without restarting the other replicas."""
        application = {
            "name": APP,
            "route_prefix": "/",
            "import_path": "modelservice.serve:app",
            "args": config(self.model, self.num_cpus),
            "deployments": [{"name": "smol", "num_replicas": replicas}],
        }
        serve_config = {
            "proxy_location": "HeadOnly",
            "http_options": {"host": "127.0.0.1", "port": self.port},
            "applications": [application],
        }
        path = Path(self.temp_dir) / "serve.yaml"
        path.write_text(yaml.safe_dump(serve_config))
        cli = Path(sys.executable).parent / "serve"
        subprocess.run(
            [str(cli), "run", "--non-blocking", "--address", self.gcs_address, str(path)],
            check=True,
            timeout=120,
            capture_output=True,
        )
        wait_until(f"{replicas} running replicas", lambda: self._running(replicas), timeout=180)

    def _running(self, replicas: int) -> bool:
        app = serve.status().applications.get(APP)
        if app is None or app.status == "DEPLOY_FAILED":
            raise AssertionError(f"the application failed: {app}")
        smol = app.deployments.get("smol")
        return app.status == "RUNNING" and smol is not None and smol.replica_states.get("RUNNING") == replicas


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listen_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp* shows them) listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def descendants(root: int) -> set[int]:
    """Every living process below `root` (Ray's processes are children of this driver, workers of
    the raylet)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The parent PID is the field after the command name, which may hold spaces.
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def processes_of(temp_dir: str) -> list[int]:
    """PIDs of the processes whose command line names the cluster's temp dir (all of Ray's do)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if temp_dir.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def wait_until(what: str, check: Any, timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


@contextmanager
def local_cluster(replicas: int, num_cpus: float = 1) -> Iterator[Cluster]:
    """A fresh local cluster serving `config(...)`; stopped, and its processes checked gone, on exit."""
    model = model_path()
    # Short: Ray's unix sockets live under it and their paths have a length limit.
    temp_dir = f"/tmp/msray-{os.getpid()}"
    port = free_port()
    start = time.monotonic()
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=temp_dir, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        gcs = ray.get_runtime_context().gcs_address
        c = Cluster(f"http://127.0.0.1:{port}/v1", model, temp_dir, 0.0, num_cpus, port, gcs)
        c.deploy(replicas)
        wait_until("the ingress", c.answers, timeout=120)
        c.started_s = time.monotonic() - start
        yield c
    finally:
        # Workers whose raylet dies are re-parented, so collect them while the tree stands.
        ours = {pid: cmdline(pid) for pid in descendants(os.getpid()) | set(processes_of(temp_dir))}
        serve.shutdown()
        ray.shutdown()

        def alive() -> list[int]:
            # Same PID and command line: the same process (a PID may be reused).
            return [pid for pid, line in ours.items() if line and cmdline(pid) == line]

        deadline = time.monotonic() + 30
        while alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        left = alive()
        print(f"\nthe cluster's {len(ours)} processes stopped; {len(left)} left behind")
        for pid in left:  # only processes of this cluster, by PID
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"processes of the test cluster outlived it: {left}"


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with local_cluster(replicas=2) as c:
        yield c
