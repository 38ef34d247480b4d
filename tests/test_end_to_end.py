"""Prepare, train and score submitted with `ray job submit` to a real `ray start` cluster."""

import json
import sys

import pyarrow.parquet as pq
import pytest
from conftest import REPO, TIMELINE

from nba_ray.cluster import LocalCluster

pytestmark = pytest.mark.cluster


def submit(cluster: LocalCluster, *args: str) -> str:
    code, output = cluster.submit_job([sys.executable, *args], REPO, timeout_s=900)
    assert code == 0, output[-4000:]
    return output


def test_jobs_run_on_local_cluster(tmp_path):
    root = str(tmp_path)
    common = ["--root", root]
    with LocalCluster(num_cpus=2, object_store_memory=300 * 1024**2) as cluster:
        listing = submit(cluster, "-c", "import os; print('UPLOADED', sorted(os.listdir('.')))")
        submit(
            cluster,
            "jobs/prepare.py",
            "--config",
            "configs/data.yaml",
            *common,
            "--set",
            f"timeline_path={TIMELINE}",
            "--set",
            "max_games_per_split=300",
        )
        train_log = submit(
            cluster,
            "jobs/train.py",
            "--config",
            "configs/lstm.yaml",
            *common,
            "--set",
            "train.max_epochs=2",
            "--set",
            "run.name=e2e",
        )
        score_log = submit(
            cluster,
            "jobs/score.py",
            "--config",
            "configs/lstm.yaml",
            *common,
            "--set",
            "run.name=e2e",
            "--set",
            "score.bootstrap_samples=200",
        )

    assert "epoch   2" in train_log
    assert "best epoch" in train_log
    uploaded = next(line for line in listing.splitlines() if line.startswith("UPLOADED"))
    assert "'jobs'" in uploaded
    for excluded in ("'.git'", "'.venv'", "'outputs'"):
        assert excluded not in uploaded
    header = next(line for line in score_log.splitlines() if line.startswith("| minute"))
    assert "model" in header
    assert "persistence" in header

    results = pq.read_table(tmp_path / "outputs" / "scores" / "test" / "results")
    assert results.num_rows == 300
    summary = json.loads((tmp_path / "outputs" / "scores" / "test" / "summary.json").read_text())
    assert summary["n_games"] == 300
    assert len(summary["mae"]["model"]) == 6
    assert summary["mae_average"]["persistence"] > 0
    best = json.loads((tmp_path / "outputs" / "runs" / "e2e" / "best_checkpoint.json").read_text())
    assert best["epochs_run"] == 2
