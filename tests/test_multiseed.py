"""Multi-seed runs: across-seed statistics, trial concurrency and reuse of finished seeds."""

import csv
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO, TIMELINE

from nba_ray.config import ConfigError, DataConfig, TrainJobConfig, load_config
from nba_ray.multiseed import (
    max_concurrent_trials,
    plan_seed,
    run_multiseed,
    trial_peak_resources,
)
from nba_ray.seed_summary import (
    SEED_MEAN,
    across_seeds,
    summarize_seeds,
    t_quantile,
    write_seeds_csv,
)
from nba_ray.splits import prepare_splits, read_manifest

# Two-sided 95% and 99% Student t critical values from standard tables.
T_TABLE = [
    (0.975, 1, 12.7062047),
    (0.975, 2, 4.3026527),
    (0.975, 4, 2.7764451),
    (0.975, 9, 2.2621572),
    (0.975, 30, 2.0422725),
    (0.995, 1, 63.6567412),
]


@pytest.mark.parametrize(("probability", "df", "expected"), T_TABLE)
def test_t_quantile_matches_table(probability, df, expected):
    assert t_quantile(probability, df) == pytest.approx(expected, abs=1e-6)


def test_t_quantile_lower_tail_negative():
    assert t_quantile(0.025, 4) == pytest.approx(-2.7764451, abs=1e-6)


def test_across_seeds_hand_numbers():
    # Five seeds, two horizons: column 0 is 1..5, column 1 has deviations -1, -1, 2, -1, 1.
    values = np.array([[1.0, 10.0], [2.0, 10.0], [3.0, 13.0], [4.0, 10.0], [5.0, 12.0]])
    stats = across_seeds(values, confidence=0.95)
    assert stats["mean"] == pytest.approx([3.0, 11.0])
    # ddof=1: sums of squares 10 and 8 over n - 1 = 4.
    assert stats["std"] == pytest.approx([math.sqrt(2.5), math.sqrt(2.0)])
    # t(0.975, 4) = 2.7764451; half widths 2.7764451 * std / sqrt(5).
    assert stats["ci_low"] == pytest.approx([3.0 - 1.9632432, 11.0 - 1.7559781], abs=1e-6)
    assert stats["ci_high"] == pytest.approx([3.0 + 1.9632432, 11.0 + 1.7559781], abs=1e-6)
    assert stats["per_seed"] == values.tolist()


def test_across_seeds_single_seed_has_no_spread():
    stats = across_seeds(np.array([3.5]))
    assert stats["mean"] == 3.5
    assert stats["std"] is None
    assert stats["ci_low"] is None
    assert stats["ci_high"] is None


def job_config(*overrides: str) -> TrainJobConfig:
    return load_config(REPO / "configs" / "lstm.yaml", TrainJobConfig, list(overrides))


@pytest.mark.parametrize(
    ("overrides", "cluster", "expected"),
    [
        # 2 workers x 1 CPU to train, or 1 scoring actor + 1 read CPU: 2 CPUs per seed.
        ((), {"CPU": 2.0}, 1),
        ((), {"CPU": 5.0}, 2),
        # 1 worker, but scoring still needs 2 CPUs at once.
        (("scaling.num_workers=1",), {"CPU": 2.0}, 1),
        (("scaling.num_workers=1",), {"CPU": 4.0}, 2),
        (("scaling.num_workers=4",), {"CPU": 8.0}, 2),
        (
            ("scaling.use_gpu=true", "scaling.resources_per_worker={CPU: 1, GPU: 1}"),
            {"CPU": 16.0, "GPU": 2.0},
            1,
        ),
    ],
)
def test_max_concurrent_trials_limits(overrides, cluster, expected):
    assert max_concurrent_trials(job_config(*overrides), cluster) == expected


def test_trial_peak_resources_covers_scoring():
    job = job_config("scaling.num_workers=1", "score.concurrency=3")
    assert trial_peak_resources(job) == {"CPU": 4.0}


def test_max_concurrent_trials_rejects_small_cluster():
    with pytest.raises(ConfigError, match="one seed needs 2 CPU at a time"):
        max_concurrent_trials(job_config(), {"CPU": 1.0})


def write_scores(folder, game_ids, actual, forecast, persistence, mae):
    """A scoring-run folder with the parts that summarize_seeds reads."""
    (folder / "results").mkdir(parents=True)
    table = pa.table(
        {
            "game_id": game_ids,
            "actual": actual.tolist(),
            "forecast": forecast.tolist(),
            "persistence": persistence.tolist(),
        }
    )
    pq.write_table(table, folder / "results" / "part-0.parquet")
    summary = {"n_games": len(game_ids), "mae": mae}
    (folder / "summary.json").write_text(json.dumps(summary))


def test_summarize_seeds_averages_forecasts(tmp_path):
    actual = np.zeros((4, 6))
    persistence = np.full((4, 6), 2.0)
    # Seed 0 forecasts +1 and seed 1 forecasts -1 everywhere, so their average is exact.
    for seed, sign in ((0, 1.0), (1, -1.0)):
        mae = {"model": [1.0 + seed] * 6, "persistence": [2.0] * 6}
        write_scores(
            tmp_path / f"s{seed}",
            ["a", "b", "c", "d"],
            actual,
            np.full((4, 6), sign),
            persistence,
            mae,
        )
    summary = summarize_seeds([0, 1], [tmp_path / "s0", tmp_path / "s1"], bootstrap_samples=50)
    assert summary["forecasters"] == ["model", "persistence"]
    assert summary["mae"]["model"]["mean"] == pytest.approx([1.5] * 6)
    assert summary["mae_average"]["model"]["std"] == pytest.approx(math.sqrt(0.5))
    assert summary[SEED_MEAN]["mae"] == pytest.approx([0.0] * 6)
    comparison = summary[SEED_MEAN]["minus_persistence"]
    assert comparison["average"] == pytest.approx(-2.0)
    assert comparison["average_ci_low"] == pytest.approx(-2.0)
    assert comparison["n_games"] == 4


def test_summarize_seeds_rejects_other_games(tmp_path):
    zeros = np.zeros((2, 6))
    mae = {"model": [1.0] * 6, "persistence": [0.0] * 6}
    write_scores(tmp_path / "s0", ["a", "b"], zeros, zeros, zeros, mae)
    write_scores(tmp_path / "s1", ["a", "c"], zeros, zeros, zeros, mae)
    with pytest.raises(ValueError, match="seed 1 scored other games than seed 0"):
        summarize_seeds([0, 1], [tmp_path / "s0", tmp_path / "s1"], bootstrap_samples=10)


def test_seeds_csv_one_row_per_minute(tmp_path):
    per_seed = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.0] * 6])
    summary = {
        "seeds": [3, 7],
        "minutes": list(range(18, 24)),
        "forecasters": ["model"],
        "mae": {"model": across_seeds(per_seed)},
        "mae_average": {"model": across_seeds(per_seed.mean(axis=1))},
    }
    write_seeds_csv(tmp_path / "seeds.csv", summary)
    with open(tmp_path / "seeds.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 14
    assert rows[0] == {"seed": "3", "minute": "18", "model": "1.000000"}
    assert rows[6] == {"seed": "3", "minute": "average", "model": "3.500000"}
    assert rows[13] == {"seed": "7", "minute": "average", "model": "2.000000"}


# Analog scoring needs at least 500 training games (its 500 nearest neighbours).
SPLIT_GAMES = 520
TINY = (
    "splits_dir=splits",
    "run.storage_path=runs",
    "score.output_dir=scores",
    "run.name=tiny",
    "train.max_epochs=2",
    "scaling.num_workers=1",
    "score.bootstrap_samples=200",
)


@pytest.fixture(scope="module")
def two_seed_runs(tmp_path_factory, ray_local):
    """Seeds 0 and 1 trained and scored once on 520-game splits, then the job rerun."""
    root = tmp_path_factory.mktemp("multiseed")
    config = DataConfig(
        timeline_path=str(TIMELINE), output_dir="splits", max_games_per_split=SPLIT_GAMES
    )
    prepare_splits(config, root)
    first = run_multiseed(job_config(*TINY), root, [0, 1], write_report=False)
    files = [
        root / "runs" / f"tiny-seed{s}" / name
        for s in (0, 1)
        for name in ("metrics.csv", "best_checkpoint.json")
    ]
    files += [root / "scores" / f"tiny-seed{s}" / "summary.json" for s in (0, 1)]
    mtimes = {path: path.stat().st_mtime_ns for path in files}
    return root, first, mtimes


def test_multiseed_first_run_trains_every_seed(two_seed_runs):
    root, first, _ = two_seed_runs
    assert [plan.action for plan in first.plans] == ["train", "train"]
    summary = json.loads((first.output_dir / "summary.json").read_text())
    assert summary["seeds"] == [0, 1]
    assert summary["n_games"] == SPLIT_GAMES
    assert len(summary["mae"]["model"]["per_seed"]) == 2
    assert summary["mae"]["persistence"]["std"] == [0.0] * 6
    with open(first.output_dir / "seeds.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 2 * 7
    assert (first.output_dir / "summary.md").read_text() == first.markdown


def test_multiseed_rerun_reuses_finished_seeds(two_seed_runs, caplog):
    root, first, mtimes = two_seed_runs
    caplog.set_level("INFO", logger="nba_ray.multiseed")
    second = run_multiseed(job_config(*TINY), root, [0, 1], write_report=False)
    assert [plan.action for plan in second.plans] == ["reuse", "reuse"]
    for seed in (0, 1):
        assert f"seed {seed}: reusing finished run" in caplog.text
    assert "running" not in caplog.text
    for path, mtime in mtimes.items():
        assert path.stat().st_mtime_ns == mtime, path
    assert second.summary["mae"] == first.summary["mae"]


def test_multiseed_rescores_after_score_change(two_seed_runs):
    root, _, _ = two_seed_runs
    job = job_config(*TINY, "score.bootstrap_samples=300")
    plan = plan_seed(job, root, 0, read_manifest(root / "splits"))
    assert plan.action == "score"


def test_multiseed_rejects_changed_training_config(two_seed_runs):
    root, _, _ = two_seed_runs
    job = job_config(*TINY, "train.learning_rate=0.01")
    with pytest.raises(ConfigError, match=r"train.learning_rate: 0.001 -> 0.01"):
        plan_seed(job, root, 1, read_manifest(root / "splits"))
