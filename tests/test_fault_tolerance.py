"""Recovery from a killed training worker and a killed scoring job, on a real Ray cluster.

The jobs run as `jobs/train.py` and `jobs/score.py` subprocesses connected to a private
`LocalCluster`, so the test can SIGKILL a training worker of that cluster, or the scoring
driver, without touching any other Ray on the machine.
"""

import csv
import dataclasses
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import REPO

from nba_ray import atomic
from nba_ray.checkpoint import read_metadata
from nba_ray.cluster import LocalCluster

MAX_EPOCHS = 8
JOB_TIMEOUT_S = 600
# Enough object store for the small splits, small enough to sit beside other clusters.
OBJECT_STORE_BYTES = 200 * 1024**2
RESUMED = re.compile(r"resumed from checkpoint after epoch (\d+)")
EPOCH_LINE = re.compile(r"epoch +(\d+)  train/loss")
# Ray Train writes this file each time it registers a reported checkpoint.
SNAPSHOT_FILE = "checkpoint_manager_snapshot.json"


@dataclasses.dataclass
class JobRun:
    """Exit code and combined stdout and stderr of one job subprocess."""

    returncode: int
    log: str


@dataclasses.dataclass
class KilledTraining:
    """A training run during which one Ray Train worker was SIGKILLed."""

    run: JobRun
    run_dir: Path
    killed_pid: int
    registered_epoch_at_kill: int


@dataclasses.dataclass
class KilledScoring:
    """A scoring run SIGKILLed while it wrote its staging folder."""

    returncode: int
    driver_pid: int
    files_before: dict[str, str]
    rows_before: int
    staging: Path
    staging_entries_at_kill: list[str]


def job_env(cluster: LocalCluster) -> dict[str, str]:
    # Drop the caller's RAY_* variables so the driver connects to this cluster only.
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(cluster.driver_env)
    return env


def start_job(cluster: LocalCluster, script: str, log_path: Path, *args: str) -> subprocess.Popen:
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [sys.executable, str(REPO / "jobs" / script), *args],
            cwd=REPO,
            env=job_env(cluster),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def finish_job(process: subprocess.Popen, log_path: Path) -> JobRun:
    try:
        process.wait(timeout=JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"{log_path.name} timed out after {JOB_TIMEOUT_S} s:\n{tail(log_path)}")
    return JobRun(process.returncode, log_path.read_text())


def tail(log_path: Path, lines: int = 60) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def train_args(root: Path, storage: Path, name: str, max_epochs: int) -> list[str]:
    overrides = [
        "splits_dir=splits",
        f"run.storage_path={storage}",
        f"run.name={name}",
        f"train.max_epochs={max_epochs}",
        f"train.patience_epochs={max_epochs + 1}",
        "run.max_failures=1",
        "scaling.num_workers=2",
    ]
    args = ["--config", str(REPO / "configs" / "lstm.yaml"), "--root", str(root)]
    for override in overrides:
        args += ["--set", override]
    return args


def score_args(root: Path, scores: Path, checkpoint: Path) -> list[str]:
    overrides = ["splits_dir=splits", f"score.output_dir={scores}", "score.bootstrap_samples=200"]
    args = ["--config", str(REPO / "configs" / "lstm.yaml"), "--root", str(root)]
    for override in overrides:
        args += ["--set", override]
    return [*args, "--checkpoint", str(checkpoint), "--split", "test", "--name", "test"]


def run_job(cluster: LocalCluster, script: str, log_path: Path, args: list[str]) -> JobRun:
    return finish_job(start_job(cluster, script, log_path, *args), log_path)


def read_history(run_dir: Path) -> list[dict[str, float]]:
    with open(run_dir / "metrics.csv") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def read_best_record(run_dir: Path) -> dict:
    return json.loads((run_dir / "best_checkpoint.json").read_text())


def registered_epoch(run_dir: Path) -> int:
    """Return the epoch of the latest checkpoint Ray Train has registered, 0 before the first.

    A checkpoint folder appears before the controller registers it, and the controller collects
    reports only every few seconds. A worker killed in between restarts without that checkpoint.
    """
    try:
        snapshot = json.loads((run_dir / SNAPSHOT_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        # Not written yet, or caught halfway through a write.
        return 0
    latest = snapshot.get("latest_checkpoint_result") or {}
    return int(latest.get("metrics", {}).get("epoch", 0))


def train_worker_pids(cluster: LocalCluster) -> list[int]:
    # Ray sets each actor's process title to ray::<class>.<method>, which /proc shows as its
    # command line. cluster.processes() lists only this cluster's processes.
    return [proc.pid for proc in cluster.processes() if proc.cmdline.startswith("ray::RayTrain")]


def file_digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def wait_for(condition, process: subprocess.Popen, log_path: Path, description: str):
    """Poll `condition` until it returns a truthy value, and fail if the job exits first."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            output = tail(log_path)
            pytest.fail(f"job exited with {process.returncode} before {description}:\n{output}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"no {description} after {JOB_TIMEOUT_S} s:\n{tail(log_path)}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(num_cpus=2, num_gpus=0, object_store_memory=OBJECT_STORE_BYTES) as running:
        yield running


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fault-tolerance")


@pytest.fixture(scope="module")
def killed_training(cluster, small_splits, storage) -> KilledTraining:
    """Train MAX_EPOCHS epochs and SIGKILL one of the two workers after the first checkpoint."""
    run_dir = storage / "killed"
    log_path = storage / "killed.log"
    args = train_args(small_splits, storage, "killed", MAX_EPOCHS)
    process = start_job(cluster, "train.py", log_path, *args)
    wait_for(lambda: registered_epoch(run_dir) >= 1, process, log_path, "registered checkpoint")
    workers = train_worker_pids(cluster)
    epoch_at_kill = registered_epoch(run_dir)
    assert len(workers) == 2, f"expected 2 RayTrainWorker processes, found {workers}"
    os.kill(workers[0], signal.SIGKILL)
    return KilledTraining(finish_job(process, log_path), run_dir, workers[0], epoch_at_kill)


@pytest.mark.cluster
def test_killed_worker_run_succeeds(killed_training):
    run = killed_training.run
    assert run.returncode == 0, run.log[-5000:]
    assert 1 <= killed_training.registered_epoch_at_kill < MAX_EPOCHS


@pytest.mark.cluster
def test_killed_worker_run_resumes_once(killed_training):
    resumed = RESUMED.findall(killed_training.run.log)
    assert len(resumed) == 1, killed_training.run.log[-5000:]
    # Ray prefixes worker output with "(RayTrainWorker pid=N)", so the pid shows who resumed.
    resumer = re.search(r"pid=(\d+)\)[^\n]*resumed from checkpoint", killed_training.run.log)
    assert resumer is not None
    assert int(resumer.group(1)) != killed_training.killed_pid
    # Ray Train resumes from its latest registered checkpoint, which cannot be older than the
    # one registered when the worker died.
    assert int(resumed[0]) >= killed_training.registered_epoch_at_kill


@pytest.mark.cluster
def test_killed_worker_resume_continues_next_epoch(killed_training):
    log = killed_training.run.log
    match = RESUMED.search(log)
    assert match is not None
    epochs_after_resume = [int(epoch) for epoch in EPOCH_LINE.findall(log[match.end() :])]
    assert epochs_after_resume, log[-5000:]
    assert epochs_after_resume[0] == int(match.group(1)) + 1


@pytest.mark.cluster
def test_killed_worker_history_has_every_epoch(killed_training):
    history = read_history(killed_training.run_dir)
    assert [int(row["epoch"]) for row in history] == list(range(1, MAX_EPOCHS + 1))
    assert read_best_record(killed_training.run_dir)["epochs_run"] == MAX_EPOCHS


@pytest.mark.cluster
def test_killed_worker_best_checkpoint_is_min_mae(killed_training):
    history = read_history(killed_training.run_dir)
    best = min(history, key=lambda row: row["val/mae"])
    record = read_best_record(killed_training.run_dir)
    metadata = read_metadata(Path(record["checkpoint"]))
    assert Path(record["checkpoint"]).name == f"epoch-{int(best['epoch']):03d}"
    assert metadata["epoch"] == int(best["epoch"])
    assert record["epoch"] == int(best["epoch"])
    assert metadata["val_mae"] == pytest.approx(best["val/mae"], rel=1e-9)


@pytest.mark.cluster
def test_rerun_same_name_trains_nothing(killed_training, cluster, small_splits, storage):
    metrics_before = (killed_training.run_dir / "metrics.csv").read_text()
    args = train_args(small_splits, storage, "killed", MAX_EPOCHS)
    run = run_job(cluster, "train.py", storage / "rerun.log", args)
    assert run.returncode == 0, run.log[-5000:]
    assert RESUMED.findall(run.log) == [str(MAX_EPOCHS)]
    assert EPOCH_LINE.findall(run.log) == []
    assert (killed_training.run_dir / "metrics.csv").read_text() == metrics_before
    assert read_best_record(killed_training.run_dir)["epochs_run"] == MAX_EPOCHS


@pytest.mark.cluster
def test_new_run_name_starts_fresh(killed_training, cluster, small_splits, storage):
    args = train_args(small_splits, storage, "fresh", 2)
    run = run_job(cluster, "train.py", storage / "fresh.log", args)
    assert run.returncode == 0, run.log[-5000:]
    assert RESUMED.findall(run.log) == []
    assert EPOCH_LINE.findall(run.log)[0] == "1"
    assert [int(row["epoch"]) for row in read_history(storage / "fresh")] == [1, 2]


@pytest.fixture(scope="module")
def scores(killed_training, cluster, small_splits, storage) -> Path:
    """Score the test split once and return the folder that contains the `test` results."""
    folder = storage / "scores"
    checkpoint = Path(read_best_record(killed_training.run_dir)["checkpoint"])
    log_path = storage / "score-first.log"
    run = run_job(cluster, "score.py", log_path, score_args(small_splits, folder, checkpoint))
    assert run.returncode == 0, run.log[-5000:]
    return folder


@pytest.fixture(scope="module")
def killed_scoring(scores, killed_training, cluster, small_splits, storage) -> KilledScoring:
    """Score again and SIGKILL the driver once it has started the results table in staging."""
    target = scores / "test"
    files_before = file_digests(target)
    rows_before = pq.read_table(target / "results").num_rows
    checkpoint = Path(read_best_record(killed_training.run_dir)["checkpoint"])
    log_path = storage / "score-killed.log"
    args = score_args(small_splits, scores, checkpoint)
    process = start_job(cluster, "score.py", log_path, *args)

    def staging_with_results() -> Path | None:
        for path in scores.glob(".test.staging-*"):
            if (path / "results").exists():
                return path
        return None

    staging = wait_for(staging_with_results, process, log_path, "results folder in staging")
    process.send_signal(signal.SIGKILL)
    process.wait()
    entries = sorted(path.name for path in staging.iterdir()) if staging.exists() else []
    return KilledScoring(
        process.returncode, process.pid, files_before, rows_before, staging, entries
    )


@pytest.mark.cluster
def test_killed_scoring_keeps_previous_results(killed_scoring, scores):
    assert killed_scoring.returncode == -signal.SIGKILL
    # The kill came after the new results folder was started and before run.json, the last
    # file a scoring run writes.
    assert "results" in killed_scoring.staging_entries_at_kill
    assert "run.json" not in killed_scoring.staging_entries_at_kill
    assert file_digests(scores / "test") == killed_scoring.files_before
    table = pq.read_table(scores / "test" / "results")
    assert table.num_rows == killed_scoring.rows_before
    assert table.num_rows == 300


@pytest.mark.cluster
def test_killed_scoring_replaces_no_folder(killed_scoring, scores):
    # Only the old results and the killed run's staging folder remain, and no backup folder.
    names = sorted(path.name for path in scores.iterdir())
    assert names == sorted(["test", killed_scoring.staging.name])


@pytest.mark.cluster
def test_killed_scoring_staging_removed_later(killed_scoring, scores):
    # staged_dir names the folder after its owner, here the killed driver.
    owner = f".test.staging-{socket.gethostname()}-{killed_scoring.driver_pid}-"
    assert killed_scoring.staging.name.startswith(owner)
    removed = atomic.remove_stale_staging(scores / "test")
    assert removed == [killed_scoring.staging]
    assert not killed_scoring.staging.exists()
    assert (scores / "test" / "summary.json").is_file()


def test_staged_dir_removes_only_dead_staging(tmp_path):
    host = socket.gethostname()
    target = tmp_path / "results"
    dead = tmp_path / f".results.staging-{host}-{dead_pid()}-abc123"
    live = tmp_path / f".results.staging-{host}-{os.getpid()}-def456"
    other_host = tmp_path / f".results.staging-elsewhere-{dead_pid()}-ghi789"
    unowned = tmp_path / ".results.staging-x1y2z3"
    for folder in (dead, live, other_host, unowned):
        folder.mkdir()
    with atomic.staged_dir(target) as staging:
        (staging / "table.txt").write_text("new\n")
    assert not dead.exists()
    assert live.is_dir()
    assert other_host.is_dir()
    assert unowned.is_dir()
    assert (target / "table.txt").read_text() == "new\n"


def dead_pid() -> int:
    """Return the pid of a process that has exited and been reaped."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid
