"""Cluster plumbing: launcher configs validate with Ray's own checks; LocalCluster is private,
authenticated and stops only itself."""

import copy
import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import pytest
import yaml

from nba_ray.cluster import (
    DEFAULT_EXCLUDES,
    LocalCluster,
    allocate_ports,
    find_cluster_processes,
    ray_executable,
)

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_FILES = sorted(ROOT.glob("cluster*.yaml"))
SMALL_STORE = 100 * 1024 * 1024  # bytes of object store per test cluster: several fit in /dev/shm


# ------------------------------------------------------------------ launcher configs


def _validate(config: dict) -> dict:
    """What `ray up` checks before it contacts any cloud: provider defaults, then the schema."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_both_cluster_files_exist():
    assert {p.name for p in CLUSTER_FILES} >= {"cluster.yaml", "cluster-onprem.yaml"}


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: p.name)
def test_cluster_file_passes_ray_validation(path):
    config = _validate(yaml.safe_load(path.read_text()))
    assert config["provider"]["type"] in {"aws", "local"}
    start = " ".join(config["head_start_ray_commands"] + config["worker_start_ray_commands"])
    assert "redis" not in start.lower()  # obsolete flags of Ray < 2
    for commands in (config["head_start_ray_commands"], config["worker_start_ray_commands"]):
        ray_start = [c for c in commands if "ray start" in c]
        assert ray_start, commands
        for command in ray_start:
            assert "RAY_AUTH_MODE=token" in command
            assert "RAY_AUTH_TOKEN_PATH=$HOME/.config/nba-ray/ray_auth_token" in command
    assert "--head --port=6379" in start and "--dashboard-host=127.0.0.1" in start
    assert "--address=$RAY_HEAD_IP:6379" in start
    # The token the start commands point at is mounted on every node.
    assert "~/.config/nba-ray/ray_auth_token" in config["file_mounts"]
    assert config["file_mounts"]["~/nba-ray"] == "."
    # GPU nodes install a CUDA build of the pinned torch, the head the CPU wheel.
    assert any("torch==2.13.0" in c and "/whl/cu" in c for c in config["worker_setup_commands"])
    assert any("torch==2.13.0" in c and "/whl/cpu" in c for c in config["head_setup_commands"])


def test_aws_file_has_a_gpu_worker_type():
    config = _validate(yaml.safe_load((ROOT / "cluster.yaml").read_text()))
    workers = {
        name: node
        for name, node in config["available_node_types"].items()
        if name != config["head_node_type"]
    }
    assert any(node["resources"].get("GPU", 0) >= 1 for node in workers.values())


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: p.name)
def test_misspelled_top_level_key_fails_validation(path, tmp_path):
    text = path.read_text()
    assert "\nsetup_commands:" in text
    broken = tmp_path / path.name
    broken.write_text(text.replace("\nsetup_commands:", "\nsetup_comands:"))
    with pytest.raises(jsonschema.ValidationError, match="setup_comands"):
        _validate(yaml.safe_load(broken.read_text()))


# ------------------------------------------------------------------ cheap LocalCluster checks


def test_allocate_ports_gives_distinct_ports_and_a_worker_range():
    ports = allocate_ports(worker_ports=20)
    singles = [v for k, v in vars(ports).items() if k not in ("min_worker", "max_worker")]
    assert len(set(singles)) == len(singles)
    assert ports.max_worker - ports.min_worker == 19
    assert not set(singles) & set(range(ports.min_worker, ports.max_worker + 1))


def test_stop_without_start_is_a_no_op():
    cluster = LocalCluster(num_cpus=1)
    cluster.stop()
    cluster.stop()


# ------------------------------------------------------------------ real clusters


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _http_status(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _ray_job_list(env: dict[str, str], tmp_home: Path) -> subprocess.CompletedProcess:
    # HOME points at an empty folder so ~/.ray/auth_token of whoever runs the tests is not used.
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    base.update(HOME=str(tmp_home), **env)
    return subprocess.run(
        [ray_executable(), "job", "list"],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(num_cpus=1, object_store_memory=SMALL_STORE) as running:
        yield running


@pytest.mark.cluster
def test_cluster_is_loopback_only_with_its_own_token(cluster):
    assert stat.S_IMODE(cluster.token_path.stat().st_mode) == 0o600
    assert cluster.token_path.parent == cluster.temp_dir
    assert len(cluster.token) == 64
    assert cluster.token_path != Path.home() / ".ray" / "auth_token"
    assert cluster.env["RAY_ADDRESS"] == cluster.dashboard_url
    assert cluster.env["RAY_AUTH_TOKEN_PATH"] == str(cluster.token_path)
    assert cluster.dashboard_url.startswith("http://127.0.0.1:")
    assert cluster.address.startswith("127.0.0.1:")
    assert len(str(cluster.temp_dir)) < 30  # Ray's socket paths must stay under ~107 bytes


@pytest.mark.cluster
def test_job_server_rejects_clients_without_the_token(cluster, tmp_path):
    url = f"{cluster.dashboard_url}/api/jobs/"
    assert _http_status(url, {}) == 401
    assert _http_status(url, {"Authorization": "Bearer " + "0" * 64}) == 403
    assert _http_status(url, {"Authorization": f"Bearer {cluster.token}"}) == 200

    home = tmp_path / "home"
    home.mkdir()
    wrong = tmp_path / "wrong_token"
    wrong.write_text("0" * 64)
    no_token = _ray_job_list({"RAY_ADDRESS": cluster.dashboard_url}, home)
    assert no_token.returncode != 0
    assert "Unauthorized" in no_token.stdout + no_token.stderr  # the server's 401
    wrong_token = _ray_job_list(dict(cluster.env, RAY_AUTH_TOKEN_PATH=str(wrong)), home)
    assert wrong_token.returncode != 0
    assert "Forbidden" in wrong_token.stdout + wrong_token.stderr  # the server's 403
    right = _ray_job_list(cluster.env, home)
    assert right.returncode == 0, right.stdout + right.stderr


@pytest.mark.cluster
def test_submit_job_ships_the_working_dir_without_excluded_paths(cluster, tmp_path):
    work = tmp_path / "work"
    for folder in (".git", "outputs", "pkg"):
        (work / folder).mkdir(parents=True)
    (work / "outputs" / "big.bin").write_bytes(b"x" * 1024)
    (work / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (work / "pkg" / "data.txt").write_text("kept\n")
    (work / "show.py").write_text(
        "import json, os, ray\n"
        "ray.init()\n"
        "print('LISTING', json.dumps(sorted(os.listdir('.'))))\n"
        "print('ENV', os.environ.get('NBR_TEST_VAR'))\n"
        "print('CPUS', ray.cluster_resources()['CPU'])\n"
    )
    rc, output = cluster.submit_job(
        ["python", "show.py"],
        working_dir=work,
        runtime_env={"env_vars": {"NBR_TEST_VAR": "hello"}},
        timeout_s=300,
    )
    assert rc == 0, output
    listing = json.loads(output.split("LISTING ", 1)[1].splitlines()[0])
    assert listing == ["pkg", "show.py"]
    assert "ENV hello" in output and "CPUS 1.0" in output
    assert ".git" in DEFAULT_EXCLUDES and "outputs" in DEFAULT_EXCLUDES

    rc, output = cluster.submit_job(
        ["python", "-c", "raise SystemExit(3)"], working_dir=work, timeout_s=300
    )
    assert rc != 0
    assert "failed" in output.lower()


class _TestFailed(Exception):
    """Stands for an assertion failing inside a `with LocalCluster(...)` block."""


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    command = [sys.executable, str(ROOT / "jobs" / "local_cluster.py"), *args]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, check=False
    )


@pytest.mark.cluster
def test_stop_ends_only_its_own_cluster(tmp_path):
    """A LocalCluster and a CLI-started cluster side by side: stopping one leaves the other."""
    state_dir = tmp_path / "cli-cluster"
    first = LocalCluster(num_cpus=1, object_store_memory=SMALL_STORE)
    other = None
    try:
        with pytest.raises(_TestFailed), first:
            started = _cli("start", "--num-cpus", "1", "--state-dir", str(state_dir))
            assert started.returncode == 0, started.stdout + started.stderr
            other = LocalCluster.attach(state_dir)
            exports = [line for line in started.stdout.splitlines() if line.startswith("export ")]
            assert f"export RAY_ADDRESS={other.dashboard_url}" in exports
            assert f"export RAY_AUTH_TOKEN_PATH={state_dir.resolve() / 'auth_token'}" in exports
            assert (state_dir / "env.sh").read_text().startswith("export RAY_ADDRESS=")

            # A second start on the same state dir refuses and leaves the running one's token.
            token = other.token
            again = _cli("start", "--num-cpus", "1", "--state-dir", str(state_dir))
            assert again.returncode == 1 and "still running" in again.stdout
            assert other.token == token

            first_pids = {p.pid for p in first.processes()}
            other_pids = {p.pid for p in other.processes()}
            assert len(first_pids) >= 5 and len(other_pids) >= 5
            assert not first_pids & other_pids
            assert first.ports.gcs != other.ports.gcs
            raise _TestFailed  # leaving the block by an exception must still stop `first`

        assert not [pid for pid in first_pids if _pid_alive(pid)]
        assert first.processes() == []
        assert not first.temp_dir.exists()
        first.stop()  # a second stop is a no-op

        assert all(_pid_alive(pid) for pid in other_pids)
        url = f"{other.dashboard_url}/api/jobs/"
        assert _http_status(url, {"Authorization": f"Bearer {other.token}"}) == 200

        stopped = _cli("stop", "--state-dir", str(state_dir))
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert not [pid for pid in other_pids if _pid_alive(pid)]
        assert find_cluster_processes(other.cluster_id, other.temp_dir, other.session_id) == []
        assert not (state_dir / "auth_token").exists()
        assert not other.temp_dir.exists()
        assert _cli("stop", "--state-dir", str(state_dir)).returncode == 0  # nothing to stop
    finally:
        first.stop()
        if other is not None:
            other.stop()
        elif (state_dir / "cluster.json").exists():
            LocalCluster.attach(state_dir).stop()
