"""Ray Data batch scoring, the results table and its bad-input handling."""

import datetime as dt
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO, TIMELINE

from nba_ray.checkpoint import CheckpointError, load_checkpoint
from nba_ray.config import TrainJobConfig, load_config
from nba_ray.data import collect, read_split
from nba_ray.ingest import DataError
from nba_ray.score_job import ScoreInput, run_scoring
from nba_ray.scoring import Companions, predict_arrays, score_dataset
from nba_ray.trainer import run_training


def job_config(*overrides: str) -> TrainJobConfig:
    base = [
        "run.name=score-model",
        "splits_dir=splits",
        "run.storage_path=runs",
        "train.max_epochs=2",
        "scaling.num_workers=1",
        "score.output_dir=scores",
        "score.bootstrap_samples=200",
    ]
    return load_config(REPO / "configs" / "lstm.yaml", TrainJobConfig, [*base, *overrides])


@pytest.fixture(scope="module")
def checkpoint(small_splits, ray_local):
    return run_training(job_config(), small_splits).best_checkpoint


@pytest.fixture(scope="module")
def scored_test(small_splits, checkpoint):
    source = ScoreInput(split_dir=small_splits / "splits" / "test")
    return run_scoring(job_config(), small_splits, source, checkpoint, "test")


def test_ray_predictions_equal_direct_model(small_splits, checkpoint):
    dataset = read_split(small_splits / "splits" / "test")
    scored = score_dataset(
        dataset, checkpoint, Companions(), batch_size=64, concurrency=1, num_gpus=0, num_cpus=1
    ).to_pandas()
    direct_input = collect(read_split(small_splits / "splits" / "test"), ["game_id", "pattern"])
    direct = predict_arrays(load_checkpoint(checkpoint), direct_input)
    by_game = dict(zip(direct_input["game_id"], direct, strict=True))
    assert len(scored) == len(direct)
    for game_id, forecast in zip(scored["game_id"], scored["forecast"], strict=True):
        np.testing.assert_allclose(forecast, by_game[game_id], rtol=0, atol=1e-5)


def test_predictor_loads_checkpoint_once_per_actor(small_splits, checkpoint):
    dataset = read_split(small_splits / "splits" / "test")
    scored = score_dataset(
        dataset,
        checkpoint,
        Companions(),
        batch_size=32,
        concurrency=1,
        num_gpus=0,
        num_cpus=1,
        diagnostics=True,
    ).to_pandas()
    # 300 games in batches of 32 make 10 batches, all served by one actor's single load.
    assert len(scored) == 300
    assert scored["predictor_pid"].nunique() == 1
    assert set(scored["predictor_load_number"]) == {1}


def test_results_table_columns_and_summary(scored_test):
    table = pq.read_table(scored_test.output_dir / "results")
    for name in (
        "game_id",
        "game_date",
        "season",
        "home_team",
        "away_team",
        "last_observed",
        "forecast",
        "actual",
        "persistence",
        "abs_error",
        "persistence_abs_error",
        "checkpoint_id",
        "lower_90",
        "upper_90",
        "analog",
        "ensemble",
    ):
        assert name in table.column_names, name
    assert table.num_rows == 300
    summary = json.loads((scored_test.output_dir / "summary.json").read_text())
    assert summary["n_games"] == 300
    assert len(summary["mae"]["model"]) == 6
    assert len(summary["mae"]["persistence"]) == 6
    persistence = np.stack(table["persistence_abs_error"].to_numpy(zero_copy_only=False))
    assert summary["mae_average"]["persistence"] == pytest.approx(persistence.mean(), rel=1e-5)
    markdown = (scored_test.output_dir / "summary.md").read_text()
    assert "| persistence |" in markdown.splitlines()[0].replace(" model |", " persistence |")
    assert "persistence" in markdown.splitlines()[0]


def test_rerun_replaces_table(small_splits, checkpoint, scored_test):
    first = pq.read_table(scored_test.output_dir / "results").sort_by("game_id")
    source = ScoreInput(split_dir=small_splits / "splits" / "test")
    again = run_scoring(job_config(), small_splits, source, checkpoint, "test")
    second = pq.read_table(again.output_dir / "results").sort_by("game_id")
    assert second.num_rows == first.num_rows
    np.testing.assert_array_equal(
        np.stack(second["forecast"].to_numpy(zero_copy_only=False)),
        np.stack(first["forecast"].to_numpy(zero_copy_only=False)),
    )


def test_missing_checkpoint_is_clear(small_splits, tmp_path, ray_local):
    source = ScoreInput(split_dir=small_splits / "splits" / "test")
    with pytest.raises(CheckpointError, match="checkpoint folder not found"):
        run_scoring(job_config(), small_splits, source, tmp_path / "nothing", "bad")


def test_checkpoint_without_normalization_rejected(small_splits, checkpoint, tmp_path):
    broken = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, broken)
    metadata = json.loads((broken / "metadata.json").read_text())
    del metadata["normalization"]
    (broken / "metadata.json").write_text(json.dumps(metadata))
    source = ScoreInput(split_dir=small_splits / "splits" / "test")
    with pytest.raises(CheckpointError, match="no 'normalization' entry"):
        run_scoring(job_config(), small_splits, source, broken, "bad")


def test_wrong_input_schema_keeps_old_results(small_splits, checkpoint, scored_test, tmp_path):
    before = pq.read_table(scored_test.output_dir / "results")
    bad_split = tmp_path / "bad"
    bad_split.mkdir()
    table = pq.read_table(small_splits / "splits" / "test" / "games.parquet").drop(["pattern"])
    pq.write_table(table, bad_split / "games.parquet")
    with pytest.raises(DataError, match="bad/games.parquet: missing column pattern"):
        run_scoring(job_config(), small_splits, ScoreInput(split_dir=bad_split), checkpoint, "test")
    after = pq.read_table(scored_test.output_dir / "results")
    assert after.num_rows == before.num_rows


def short_game_timeline(path):
    """Write two real 2024-25 games plus a copy of one cut off after 15 minutes."""
    timeline = pq.read_table(TIMELINE)
    games = timeline.filter(
        pa.compute.is_in(timeline["game_id"], value_set=pa.array(["0022400001", "0022400002"]))
    )
    short = games.filter(
        pa.compute.and_(
            pa.compute.equal(games["game_id"], "0022400001"),
            pa.compute.less_equal(games["elapsed_s"], 900),
        )
    )
    short = short.set_column(0, "game_id", pa.array(["0022499999"] * short.num_rows))
    short = short.set_column(1, "game_date", pa.array([dt.date(2025, 4, 20)] * short.num_rows))
    pq.write_table(pa.concat_tables([games, short]), path)


def test_short_game_listed_in_rejects(small_splits, checkpoint, tmp_path):
    path = tmp_path / "timeline.parquet"
    short_game_timeline(path)
    outcome = run_scoring(
        job_config(), small_splits, ScoreInput(timeline_path=path), checkpoint, "short"
    )
    assert outcome.games_scored == 2
    rejects = (outcome.output_dir / "rejects.csv").read_text().splitlines()
    assert rejects[0] == "game_id,reason"
    assert rejects[1].startswith("0022499999,")
    assert "fewer than 18 minutes" in rejects[1]


def test_score_one_season_from_timeline(small_splits, checkpoint):
    source = ScoreInput(timeline_path=TIMELINE, seasons=["2024-25"], season_types=["regular"])
    outcome = run_scoring(job_config(), small_splits, source, checkpoint, "season")
    assert outcome.games_scored == 1230
    summary = json.loads((outcome.output_dir / "summary.json").read_text())
    assert summary["seasons"] == ["2024-25"]
    assert summary["n_games"] == 1230
