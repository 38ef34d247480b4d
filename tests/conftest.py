"""Shared fixtures: the real data, small real splits, and a local Ray on loopback."""

import os
from pathlib import Path

# Ray reads this when imported: 0 keeps clusters started by the tests on 127.0.0.1.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import pytest  # noqa: E402
import ray  # noqa: E402

from nba_ray.config import DataConfig  # noqa: E402
from nba_ray.splits import prepare_splits  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TIMELINE = REPO / "data" / "nba_score_timelines.parquet"
RAW_SAMPLES = REPO / "data" / "raw_samples" / "legacy_pbp"


@pytest.fixture(scope="session")
def small_splits(tmp_path_factory) -> Path:
    """Real-data splits cut to the latest 300 games per split; returns the project root."""
    root = tmp_path_factory.mktemp("small")
    config = DataConfig(timeline_path=str(TIMELINE), output_dir="splits", max_games_per_split=300)
    prepare_splits(config, root)
    return root


@pytest.fixture(scope="session")
def ray_local():
    """A real single-node Ray with 2 CPUs on loopback, shared by the tests that need one."""
    if ray.is_initialized():
        ray.shutdown()
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
    )
    yield
    ray.shutdown()
