"""Chronological splits, the manifest and atomic replacement of the split folder."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import TIMELINE

from nba_ray.config import DataConfig, SplitBoundaries
from nba_ray.ingest import DataError
from nba_ray.splits import assign_splits, prepare_splits


@pytest.fixture(scope="module")
def full_splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("full")
    manifest = prepare_splits(DataConfig(timeline_path=str(TIMELINE), output_dir="splits"), root)
    return root / "splits", manifest


def test_splits_share_no_dates(full_splits):
    folder, _ = full_splits
    dates = {
        name: set(pq.read_table(folder / name)["game_date"].to_pylist())
        for name in ("train", "val", "cal", "test")
    }
    names = list(dates)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not dates[a] & dates[b], f"{a} and {b} share dates"
    assert max(dates["train"]) < min(dates["val"])
    assert max(dates["val"]) < min(dates["cal"])
    assert max(dates["cal"]) < min(dates["test"])


def test_test_split_holds_latest_games(full_splits):
    folder, manifest = full_splits
    assert manifest["splits"]["test"]["last_date"] == "2025-04-13"
    assert manifest["splits"]["train"]["first_date"] == "2013-10-29"


def test_default_split_is_regular_season(full_splits):
    folder, manifest = full_splits
    total = sum(info["games"] for info in manifest["splits"].values())
    assert total == 14420
    types = set()
    for name in ("train", "val", "cal", "test"):
        types |= set(pq.read_table(folder / name)["season_type"].to_pylist())
    assert types == {"regular"}


def test_split_fractions_near_configured(full_splits):
    _, manifest = full_splits
    games = np.array([manifest["splits"][n]["games"] for n in ("train", "val", "cal", "test")])
    share = games / games.sum()
    assert np.allclose(share, [0.606, 0.117, 0.141, 0.135], atol=0.01)


def test_manifest_records_inputs(full_splits):
    folder, manifest = full_splits
    stored = json.loads((folder / "manifest.json").read_text())
    assert stored["timeline_sha256"] == manifest["timeline_sha256"]
    assert len(stored["timeline_sha256"]) == 64
    assert stored["config"]["season_types"] == ["regular"]
    assert "ray" in stored["versions"]


def test_split_columns_are_fixed_lists(full_splits):
    folder, _ = full_splits
    schema = pq.read_schema(folder / "train" / "games.parquet")
    assert schema.field("pattern").type.list_size == 18
    assert schema.field("outcome").type.list_size == 6
    assert schema.field("timeseries").type.list_size == 48


def test_split_batches_are_2d_numeric(full_splits, ray_local):
    from nba_ray.data import read_split

    folder, _ = full_splits
    batch = next(iter(read_split(folder / "val").iter_batches(batch_format="numpy")))
    assert batch["pattern"].dtype == np.float32
    assert batch["pattern"].ndim == 2
    assert batch["pattern"].shape[1] == 18
    assert batch["outcome"].shape[1] == 6


def test_boundaries_override_fractions():
    dates = np.array(["2020-01-01", "2020-02-01", "2020-03-01", "2020-04-01"], "datetime64[D]")
    config = DataConfig(
        boundaries=SplitBoundaries(
            val=np.datetime64("2020-02-01").item(),
            cal=np.datetime64("2020-03-01").item(),
            test=np.datetime64("2020-04-01").item(),
        )
    )
    assert assign_splits(dates, config).tolist() == [0, 1, 2, 3]


def test_failed_prepare_keeps_previous_output(tmp_path):
    prepare_splits(
        DataConfig(timeline_path=str(TIMELINE), output_dir="splits", max_games_per_split=50),
        tmp_path,
    )
    before = (tmp_path / "splits" / "manifest.json").read_text()
    bad = DataConfig(timeline_path=str(TIMELINE), output_dir="splits", seasons=["1999-00"])
    with pytest.raises(DataError, match="season\\(s\\) 1999-00 are not in the timeline"):
        prepare_splits(bad, tmp_path)
    assert (tmp_path / "splits" / "manifest.json").read_text() == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_prepare_job_prints_split_table(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "jobs" / "prepare.py"),
            "--config",
            str(REPO / "configs" / "data.yaml"),
            "--root",
            str(tmp_path),
            "--set",
            f"timeline_path={TIMELINE}",
            "--set",
            "seasons=[2023-24, 2024-25]",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test " in result.stdout
    assert "2025-04-13" in result.stdout
