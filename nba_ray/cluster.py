"""Start and stop a private single-node Ray head for the project's scripts and tests.

`LocalCluster` runs `ray start --head` with every port it can pin on 127.0.0.1, its own short
temp dir and token authentication with a token it generates itself (never ~/.ray/auth_token).
`stop()` stops only the processes of that cluster: `ray stop` would kill every Ray on the
machine, including other people's.

    with LocalCluster(num_cpus=2) as cluster:
        rc, output = cluster.submit_job(["python", "jobs/train.py", ...], working_dir=".")

How a cluster's processes are found (Linux /proc only, no psutil):
- `ray start` runs in a new session, so the GCS, raylet, dashboard, agents and every worker
  (even those the raylet moves into their own process group) keep that session id;
- every process inherits the marker variable NBA_RAY_CLUSTER_ID, which also finds job drivers
  (the job supervisor starts them in a new session);
- processes whose command line names the cluster's temp dir, and all descendants of the above.
A session id is trusted only while a process with the marker or the temp dir still holds it, so
a stale state file cannot make `stop` kill an unrelated session that reused the number.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import logging
import os
import random
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MARKER_VAR = "NBA_RAY_CLUSTER_ID"
STATE_FILE = "cluster.json"
TOKEN_FILE = "auth_token"
ENV_FILE = "env.sh"

# Paths a job never needs: shipping them would make every submission slow or exceed Ray's
# 512 MiB working_dir limit. Patterns use .gitignore syntax relative to the working dir.
DEFAULT_EXCLUDES = (".git", ".venv", "outputs", "__pycache__", "*.egg-info", ".pytest_cache")

# Ray rewrites 127.0.0.1 (in --node-ip-address and in a client's GCS address) to the machine's
# routable address unless multi-node mode is off. Off, every server binds 127.0.0.1 only, and a
# client connects to 127.0.0.1; a client without it hangs trying the routable address.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}

# Variables from the caller that would point Ray at another cluster or another token.
_SCRUBBED_VARS = (
    "RAY_ADDRESS",
    "RAY_API_SERVER_ADDRESS",
    "RAY_AUTH_TOKEN",
    "RAY_AUTH_TOKEN_PATH",
    "RAY_AUTH_MODE",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER",
    MARKER_VAR,
)

# Ports are drawn below Linux's ephemeral range (32768+) so outgoing connections do not take them.
_PORT_LOW, _PORT_HIGH = 20000, 32000
_SINGLE_PORTS = (
    "gcs",
    "dashboard",
    "client_server",
    "metrics_export",
    "dashboard_agent_listen",
    "dashboard_agent_grpc",
    "runtime_env_agent",
    "node_manager",
    "object_manager",
    "dashboard_metrics",
    "autoscaler_metrics",
)


# `ray start` attempts: another process can take a chosen port before Ray binds it, and on an
# overloaded machine the raylet can miss Ray's fixed 30 s registration deadline.
START_ATTEMPTS = 3


def _retriable_start_failure(log: str) -> str | None:
    """Why a failed `ray start` is worth another try, or None."""
    if "already in use" in log or "bind" in log.lower():
        return "a port was taken"
    if "timed out during startup" in log or "Deadline Exceeded" in log:
        return "startup timed out; the machine is probably overloaded"
    return None


class ClusterError(RuntimeError):
    """`ray start` failed, the cluster did not become ready, or it could not be stopped."""


@dataclasses.dataclass(frozen=True)
class Ports:
    """Every TCP port of one cluster, all bound on 127.0.0.1."""

    gcs: int
    dashboard: int
    client_server: int
    metrics_export: int
    dashboard_agent_listen: int
    dashboard_agent_grpc: int
    runtime_env_agent: int
    node_manager: int
    object_manager: int
    dashboard_metrics: int
    autoscaler_metrics: int
    min_worker: int
    max_worker: int


def _port_free(port: int) -> bool:
    # A port some process holds on any interface (0.0.0.0) cannot be bound on 127.0.0.1 either.
    for host in ("0.0.0.0", "127.0.0.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def allocate_ports(worker_ports: int = 100, attempts: int = 200) -> Ports:
    """Find a random block of free ports: the single ports followed by the worker port range.

    A random contiguous block keeps two clusters started at once from picking the same ports;
    `LocalCluster.start` retries with a new block if Ray still finds one taken.
    """
    size = len(_SINGLE_PORTS) + worker_ports
    rng = random.SystemRandom()
    for _ in range(attempts):
        base = rng.randrange(_PORT_LOW, _PORT_HIGH - size)
        if all(_port_free(port) for port in range(base, base + size)):
            singles = dict(zip(_SINGLE_PORTS, range(base, base + len(_SINGLE_PORTS)), strict=True))
            first_worker = base + len(_SINGLE_PORTS)
            return Ports(
                **singles, min_worker=first_worker, max_worker=first_worker + worker_ports - 1
            )
    raise ClusterError(f"no block of {size} free ports in {_PORT_LOW}-{_PORT_HIGH}")


# --------------------------------------------------------------------------- process discovery


@dataclasses.dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    sid: int
    state: str
    comm: str
    start_time: int
    cmdline: str
    marker: str | None


def _read_proc(pid: int, marker_var: str = MARKER_VAR) -> _Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    comm = stat[stat.find("(") + 1 : stat.rfind(")")]
    fields = stat[stat.rfind(")") + 2 :].split()
    marker = None
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            prefix = marker_var.encode() + b"="
            for entry in f.read().split(b"\0"):
                if entry.startswith(prefix):
                    marker = entry[len(prefix) :].decode(errors="replace")
                    break
    except OSError:
        pass  # another user's process, or gone: it cannot carry our marker
    return _Proc(
        pid=pid,
        ppid=int(fields[1]),
        sid=int(fields[3]),
        state=fields[0],
        comm=comm,
        start_time=int(fields[19]),
        cmdline=cmdline,
        marker=marker,
    )


def _all_procs() -> dict[int, _Proc]:
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            proc = _read_proc(int(name))
            if proc is not None:
                procs[proc.pid] = proc
    return procs


def _own_lineage() -> set[int]:
    """This process and its ancestors: never ours to kill, whatever their environment says."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        proc = _read_proc(pid)
        if proc is None:
            break
        pid = proc.ppid
    return pids


def find_cluster_processes(
    cluster_id: str, temp_dir: str | os.PathLike[str], session_id: int | None
) -> list[_Proc]:
    """Live (non-zombie) processes that belong to the cluster, see the module docstring."""
    procs = _all_procs()
    temp_dir = str(temp_dir).rstrip("/") + "/"
    direct = {
        p.pid for p in procs.values() if p.marker == cluster_id or temp_dir in p.cmdline + "/"
    }
    trusted_sid = session_id if any(procs[pid].sid == session_id for pid in direct) else None
    selected = direct | {
        p.pid for p in procs.values() if trusted_sid is not None and p.sid == trusted_sid
    }
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    stack = list(selected)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in selected:
                selected.add(child)
                stack.append(child)
    excluded = _own_lineage() | {1}
    return sorted(
        (
            procs[pid]
            for pid in selected
            if pid not in excluded and procs[pid].state not in ("Z", "X")
        ),
        key=lambda p: p.pid,
    )


def _alive(proc: _Proc) -> bool:
    now = _read_proc(proc.pid)
    return now is not None and now.start_time == proc.start_time and now.state not in ("Z", "X")


def _signal(procs: Iterable[_Proc], sig: int) -> None:
    for proc in procs:
        if _alive(proc):  # the start time check guards against a recycled pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, sig)


def _wait_gone(procs: Sequence[_Proc], timeout: float) -> list[_Proc]:
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _alive(p)]
    return alive


def kill_cluster_processes(
    cluster_id: str, temp_dir: str | os.PathLike[str], session_id: int | None, grace_s: float = 5.0
) -> int:
    """Stop the cluster's processes in `ray stop`'s order and return how many there were.

    Order: raylet first (it takes its workers and agents along), then everything else, GCS last,
    each with SIGTERM and SIGKILL after `grace_s`. Raises ClusterError if any survive.
    """
    seen: set[int] = set()
    for _ in range(3):  # a second pass catches what was spawned while the first one ran
        procs = find_cluster_processes(cluster_id, temp_dir, session_id)
        if not procs:
            return len(seen)
        seen.update(p.pid for p in procs)
        stages = (
            [p for p in procs if p.comm == "raylet"],
            [p for p in procs if p.comm not in ("raylet", "gcs_server")],
            [p for p in procs if p.comm == "gcs_server"],
        )
        for stage in stages:
            if not stage:
                continue
            _signal(stage, signal.SIGTERM)
            survivors = _wait_gone(stage, grace_s)
            if survivors:
                logger.debug("SIGKILL %s", [p.pid for p in survivors])
                _signal(survivors, signal.SIGKILL)
                _wait_gone(survivors, 5.0)
    left = find_cluster_processes(cluster_id, temp_dir, session_id)
    if left:
        raise ClusterError(
            "processes of the cluster survived SIGKILL: "
            + ", ".join(f"{p.pid} {p.cmdline[:80]!r}" for p in left)
        )
    return len(seen)


# --------------------------------------------------------------------------- the cluster


def ray_executable() -> str:
    """The `ray` CLI of the running interpreter's environment, else the one on PATH."""
    candidate = Path(sys.executable).parent / "ray"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("ray")
    if found is None:
        raise ClusterError("the `ray` command was not found; install ray[default]")
    return found


def _client_base_env(env: Mapping[str, str] | None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_VARS}
    base.update(env or {})
    return base


def _http_status(url: str, token: str | None, timeout: float = 5.0) -> int:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class LocalCluster:
    """A single-node Ray head on 127.0.0.1 with token auth, owned by this object.

    Args:
        num_cpus: CPUs the node advertises (what Ray Train workers and tasks can reserve).
        num_gpus: GPUs the node advertises; None lets Ray detect them.
        state_dir: folder for the token, the state file and env.sh. Default: the cluster's own
            temp dir under /tmp, deleted on stop. A given folder keeps the state so another
            process can stop the cluster (`LocalCluster.attach(state_dir).stop()`).
        object_store_memory: bytes of shared memory for the object store (Ray's default: 30%
            of RAM). Tests pass a small value so several clusters fit side by side.
        worker_ports: size of the worker port range (one port per worker process and driver).
        stop_at_exit: stop the cluster when this Python process exits, in case the caller
            never reaches stop(). The CLI turns this off to leave the cluster running.
        keep_temp_dir: keep Ray's logs under the temp dir after stop (for debugging).
    """

    def __init__(
        self,
        num_cpus: int = 2,
        *,
        num_gpus: int | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        object_store_memory: int | None = None,
        worker_ports: int = 100,
        start_timeout_s: float = 120.0,
        stop_grace_s: float = 5.0,
        stop_at_exit: bool = True,
        keep_temp_dir: bool = False,
    ) -> None:
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.object_store_memory = object_store_memory
        self.worker_ports = worker_ports
        self.start_timeout_s = start_timeout_s
        self.stop_grace_s = stop_grace_s
        self.stop_at_exit = stop_at_exit
        self.keep_temp_dir = keep_temp_dir
        self._requested_state_dir = Path(state_dir).resolve() if state_dir is not None else None
        self.cluster_id: str | None = None
        self.temp_dir: Path | None = None
        self.state_dir: Path | None = None
        self.ports: Ports | None = None
        self.session_id: int | None = None
        self._started = False
        self._stopped = False
        self._owner_pid: int | None = None

    # ----------------------------------------------------------------- public properties

    @property
    def token_path(self) -> Path:
        self._require_started()
        return self.state_dir / TOKEN_FILE

    @property
    def token(self) -> str:
        return self.token_path.read_text().strip()

    @property
    def address(self) -> str:
        """GCS address for `ray.init(address=...)` (with RAY_AUTH_MODE/RAY_AUTH_TOKEN_PATH set)."""
        self._require_started()
        return f"127.0.0.1:{self.ports.gcs}"

    @property
    def dashboard_url(self) -> str:
        self._require_started()
        return f"http://127.0.0.1:{self.ports.dashboard}"

    @property
    def env(self) -> dict[str, str]:
        """What a job client (`ray job ...`, JobSubmissionClient) needs in its environment.

        RAY_ADDRESS is the job server's URL, which `ray.init()` refuses: a driver run outside
        `ray job submit` uses `driver_env` instead.
        """
        return {
            "RAY_ADDRESS": self.dashboard_url,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token_path),
            **LOOPBACK_ENV,
        }

    @property
    def driver_env(self) -> dict[str, str]:
        """Environment for `ray.init()` drivers and `ray status`: RAY_ADDRESS is the GCS.

        In-process, set these in os.environ before `import ray` (Ray reads
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER at import time).
        """
        return {**self.env, "RAY_ADDRESS": self.address}

    @property
    def running(self) -> bool:
        return self._started and not self._stopped

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalCluster:
        if self._started:
            raise ClusterError("a LocalCluster object starts once; create a new one")
        self._started = True
        self.cluster_id = secrets.token_hex(8)
        # Ray's socket paths (temp/session_<date>_<pid>/sockets/plasma_store) must stay under
        # ~107 bytes, so the temp dir is always a short folder under /tmp.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="nbr-", dir="/tmp"))
        self.state_dir = self._requested_state_dir or self.temp_dir
        if self.stop_at_exit:
            self._owner_pid = os.getpid()
            atexit.register(self._stop_at_exit)
        try:
            self._refuse_running_state()
            self._write_token()
            last_error = ""
            for attempt in range(START_ATTEMPTS):
                self.ports = allocate_ports(self.worker_ports)
                if self._ray_start(attempt):
                    break
                last_error = self._start_log_tail()
                reason = _retriable_start_failure(last_error)
                if reason is None:
                    raise ClusterError(f"`ray start` failed:\n{last_error}")
                logger.warning("ray start failed (%s); retrying with other ports", reason)
                self._kill_processes()
            else:
                raise ClusterError(f"`ray start` failed {START_ATTEMPTS} times:\n{last_error}")
            self._write_state()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        logger.info(
            "Ray head %s up: dashboard %s, GCS %s, temp dir %s",
            self.cluster_id,
            self.dashboard_url,
            self.address,
            self.temp_dir,
        )
        return self

    def stop(self) -> None:
        """Stop this cluster's processes only; safe to call twice and after a failed start."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            atexit.unregister(self._stop_at_exit)
        try:
            count = self._kill_processes()
            logger.info("Ray head %s stopped (%d processes)", self.cluster_id, count)
        finally:
            self._remove_files()

    @classmethod
    def attach(cls, state_dir: str | os.PathLike[str]) -> LocalCluster:
        """The cluster whose state lives in `state_dir` (started by another process)."""
        state_dir = Path(state_dir).resolve()
        state_file = state_dir / STATE_FILE
        if not state_file.exists():
            raise ClusterError(f"no cluster state in {state_dir}")
        state = json.loads(state_file.read_text())
        cluster = cls(num_cpus=state["num_cpus"], state_dir=state_dir, stop_at_exit=False)
        cluster._started = True
        cluster.cluster_id = state["cluster_id"]
        cluster.temp_dir = Path(state["temp_dir"])
        cluster.state_dir = state_dir
        cluster.session_id = state["session_id"]
        cluster.ports = Ports(**state["ports"])
        return cluster

    def processes(self) -> list[_Proc]:
        """The cluster's live processes (empty after stop)."""
        self._require_started()
        return find_cluster_processes(self.cluster_id, self.temp_dir, self.session_id)

    # ----------------------------------------------------------------- jobs

    def submit_job(
        self,
        entrypoint: Sequence[str],
        working_dir: str | os.PathLike[str],
        runtime_env: Mapping[str, Any] | None = None,
        *,
        excludes: Sequence[str] = DEFAULT_EXCLUDES,
        timeout_s: float | None = None,
    ) -> tuple[int, str]:
        """`ray job submit` to this cluster; see `submit_job`."""
        return submit_job(
            self.env, entrypoint, working_dir, runtime_env, excludes=excludes, timeout_s=timeout_s
        )

    # ----------------------------------------------------------------- internals

    def _stop_at_exit(self) -> None:
        if os.getpid() == self._owner_pid:  # not in a forked child that inherited the hook
            self.stop()

    def _refuse_running_state(self) -> None:
        """Never overwrite the token of a cluster that still runs from the same state dir."""
        if self.state_dir != self.temp_dir and (self.state_dir / STATE_FILE).exists():
            previous = LocalCluster.attach(self.state_dir)
            if previous.processes():
                self.state_dir = None  # stop() must not delete the running cluster's files
                raise ClusterError(
                    f"a cluster recorded in {previous.state_dir} is still running "
                    f"({previous.dashboard_url}); stop it first"
                )
            previous.stop()  # stale state from a crash or reboot

    def _require_started(self) -> None:
        if not self._started or self.state_dir is None:
            raise ClusterError("the cluster has not been started")

    def _write_token(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / TOKEN_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file

    def _server_env(self) -> dict[str, str]:
        env = _client_base_env(None)
        venv_bin = str(Path(sys.executable).parent)
        env.update(
            {
                "RAY_AUTH_MODE": "token",
                "RAY_AUTH_TOKEN_PATH": str(self.state_dir / TOKEN_FILE),
                MARKER_VAR: self.cluster_id,
                **LOOPBACK_ENV,
                # Fixed defaults (44227, 44217) would collide between clusters on one machine.
                "DASHBOARD_METRIC_PORT": str(self.ports.dashboard_metrics),
                "AUTOSCALER_METRIC_PORT": str(self.ports.autoscaler_metrics),
                "RAY_USAGE_STATS_ENABLED": "0",
                # `python` in a job entrypoint is this environment's interpreter.
                "PATH": venv_bin + os.pathsep + env.get("PATH", ""),
            }
        )
        return env

    def _ray_start_command(self) -> list[str]:
        p = self.ports
        command = [
            ray_executable(),
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--dashboard-host",
            "127.0.0.1",
            "--port",
            str(p.gcs),
            "--dashboard-port",
            str(p.dashboard),
            "--ray-client-server-port",
            str(p.client_server),
            "--min-worker-port",
            str(p.min_worker),
            "--max-worker-port",
            str(p.max_worker),
            "--metrics-export-port",
            str(p.metrics_export),
            "--dashboard-agent-listen-port",
            str(p.dashboard_agent_listen),
            "--dashboard-agent-grpc-port",
            str(p.dashboard_agent_grpc),
            "--runtime-env-agent-port",
            str(p.runtime_env_agent),
            "--node-manager-port",
            str(p.node_manager),
            "--object-manager-port",
            str(p.object_manager),
            "--num-cpus",
            str(self.num_cpus),
            "--temp-dir",
            str(self.temp_dir / "ray"),
            "--disable-usage-stats",
            "--log-style",
            "record",
            "--log-color",
            "false",
        ]
        if self.num_gpus is not None:
            command += ["--num-gpus", str(self.num_gpus)]
        if self.object_store_memory is not None:
            command += ["--object-store-memory", str(self.object_store_memory)]
        return command

    def _ray_start(self, attempt: int) -> bool:
        log_path = self.temp_dir / f"ray-start-{attempt}.log"
        command = self._ray_start_command()
        logger.debug("running %s", " ".join(command))
        with open(log_path, "wb") as log:
            # A new session: every daemon it leaves behind keeps this session id.
            process = subprocess.Popen(
                command,
                env=self._server_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.session_id = process.pid
            try:
                returncode = process.wait(timeout=self.start_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise ClusterError(
                    f"`ray start` took over {self.start_timeout_s}s:\n" + self._start_log_tail()
                ) from None
        return returncode == 0

    def _start_log_tail(self, lines: int = 40) -> str:
        logs = sorted(self.temp_dir.glob("ray-start-*.log")) if self.temp_dir else []
        if not logs:
            return ""
        return "\n".join(logs[-1].read_text(errors="replace").splitlines()[-lines:])

    def _wait_ready(self) -> None:
        """Wait until the job API answers an authenticated request (the JobHead is up)."""
        deadline = time.monotonic() + self.start_timeout_s
        url = f"{self.dashboard_url}/api/jobs/"
        token = self.token
        status = None
        while time.monotonic() < deadline:
            try:
                status = _http_status(url, token, timeout=5.0)
                if status == 200:
                    return
            except (urllib.error.URLError, OSError) as error:
                status = error
            time.sleep(0.25)
        raise ClusterError(
            f"job API at {url} not ready after {self.start_timeout_s}s (last answer: {status})"
        )

    def _write_state(self) -> None:
        state = {
            "cluster_id": self.cluster_id,
            "temp_dir": str(self.temp_dir),
            "session_id": self.session_id,
            "num_cpus": self.num_cpus,
            "ports": dataclasses.asdict(self.ports),
        }
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
        lines = [f"export {k}={shlex.quote(v)}" for k, v in self.env.items()]
        lines.append(
            f"# A driver run without `ray job submit` (ray.init(), ray status) needs the "
            f"GCS instead:\n# export RAY_ADDRESS={self.address}"
        )
        (self.state_dir / ENV_FILE).write_text("\n".join(lines) + "\n")

    def _kill_processes(self) -> int:
        if self.cluster_id is None or self.temp_dir is None:
            return 0
        return kill_cluster_processes(
            self.cluster_id, self.temp_dir, self.session_id, grace_s=self.stop_grace_s
        )

    def _remove_files(self) -> None:
        if self.state_dir is not None and self.state_dir != self.temp_dir:
            for name in (STATE_FILE, ENV_FILE, TOKEN_FILE):
                with contextlib.suppress(FileNotFoundError):
                    (self.state_dir / name).unlink()
        if self.temp_dir is not None and not self.keep_temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def submit_job(
    env: Mapping[str, str],
    entrypoint: Sequence[str],
    working_dir: str | os.PathLike[str],
    runtime_env: Mapping[str, Any] | None = None,
    *,
    excludes: Sequence[str] = DEFAULT_EXCLUDES,
    timeout_s: float | None = None,
) -> tuple[int, str]:
    """Run `ray job submit` and wait for the job; return (exit code, stdout+stderr).

    `env` is a cluster's `.env` (RAY_ADDRESS of the job server plus the token variables).
    The working dir is uploaded without `excludes` (.gitignore syntax); `runtime_env` adds keys
    (env_vars, pip, ...) and its own "excludes" are added to `excludes`. `ray job submit` streams
    the job's logs and exits 0 only if the job succeeded (without --no-wait it waits).
    """
    spec = dict(runtime_env or {})
    spec["excludes"] = list(excludes) + list(spec.get("excludes", []))
    spec.pop("working_dir", None)  # --working-dir sets it
    command = [
        ray_executable(),
        "job",
        "submit",
        "--address",
        env["RAY_ADDRESS"],
        "--working-dir",
        str(working_dir),
        "--runtime-env-json",
        json.dumps(spec),
        "--log-style",
        "record",
        "--log-color",
        "false",
        "--",
        *entrypoint,
    ]
    result = subprocess.run(
        command,
        env=_client_base_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return result.returncode, result.stdout
