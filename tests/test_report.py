"""REPORT.md and its figures, drawn from a hand-built multi-seed folder (no Ray needed)."""

import csv
import datetime as dt
import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from matplotlib.image import imread

from nba_ray.config import TrainJobConfig, config_to_dict
from nba_ray.report import (
    COVERAGE_FIGURE,
    CURVES_FIGURE,
    GAMES_FIGURE,
    MAE_FIGURE,
    REPORT_NAME,
    pick_example_games,
    write_report,
)
from nba_ray.seed_summary import summarize_seeds

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SEEDS = (0, 1, 2)
GAMES = 8
LEVELS = ("0.8", "0.9", "0.95")


def write_test_split(root, rng) -> list[str]:
    game_ids = [f"00224{i:05d}" for i in range(GAMES)]
    walks = np.cumsum(rng.normal(scale=2.0, size=(GAMES, 48)), axis=1).round()
    table = pa.table(
        {
            "game_id": game_ids,
            "game_date": [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range(GAMES)],
            "home_team": ["BOS"] * GAMES,
            "away_team": ["NYK"] * GAMES,
            "timeseries": pa.array(walks.tolist(), type=pa.list_(pa.float32(), 48)),
        }
    )
    (root / "splits" / "test").mkdir(parents=True)
    pq.write_table(table, root / "splits" / "test" / "games.parquet")
    return game_ids, walks


def write_run(run_dir, seed: int) -> None:
    run_dir.mkdir(parents=True)
    epochs = 6 + seed
    with open(run_dir / "metrics.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "train/loss", "val/mae", "val/persistence_mae"])
        for epoch in range(1, epochs + 1):
            writer.writerow([epoch, 0.5 / epoch, 3.6 + 0.3 / epoch + 0.01 * seed, 3.55])


def write_scores(score_dir, game_ids, walks, seed: int, rng, with_intervals: bool) -> None:
    actual = walks[:, 18:24]
    persistence = np.repeat(walks[:, 17:18], 6, axis=1)
    forecast = persistence + rng.normal(scale=0.5, size=actual.shape)
    columns = {
        "game_id": game_ids,
        "actual": actual.tolist(),
        "forecast": forecast.tolist(),
        "persistence": persistence.tolist(),
        "lower_90": (forecast - 4.0).tolist(),
        "upper_90": (forecast + 4.0).tolist(),
    }
    (score_dir / "results").mkdir(parents=True)
    pq.write_table(pa.table(columns), score_dir / "results" / "part-0.parquet")
    mae = {
        name: np.abs(values - actual).mean(axis=0).tolist()
        for name, values in (
            ("model", forecast),
            ("persistence", persistence),
            ("analog", persistence + 1.0),
            ("analog_delta", persistence + 0.1),
            ("ensemble", forecast),
        )
    }
    summary = {"n_games": GAMES, "mae": mae}
    if with_intervals:
        summary["intervals"] = {
            forecaster: {
                level: {
                    "coverage": (float(level) + rng.normal(scale=0.02, size=6)).tolist(),
                    "mean_width": (np.arange(6) + 8.0 + seed).tolist(),
                }
                for level in LEVELS
            }
            for forecaster in ("model", "ensemble")
        }
    (score_dir / "summary.json").write_text(json.dumps(summary))


def build_multiseed_folder(root, with_intervals: bool = True):
    """A multi-seed folder as run_multiseed leaves it, from hand-made runs and scores."""
    rng = np.random.default_rng(3)
    game_ids, walks = write_test_split(root, rng)
    runs = []
    for seed in SEEDS:
        run_dir, score_dir = root / "runs" / f"r-seed{seed}", root / "scores" / f"r-seed{seed}"
        write_run(run_dir, seed)
        write_scores(score_dir, game_ids, walks, seed, rng, with_intervals)
        runs.append(
            {
                "seed": seed,
                "run_dir": str(run_dir),
                "score_dir": str(score_dir),
                "best_epoch": 6,
                "epochs_run": 6 + seed,
                "best_val_mae": 3.65,
                "action": "trained and scored",
            }
        )
    summary = summarize_seeds(list(SEEDS), [r["score_dir"] for r in runs], bootstrap_samples=100)
    summary.update(
        runs=runs, splits_dir=str(root / "splits"), config=config_to_dict(TrainJobConfig())
    )
    folder = root / "scores" / "r-multiseed"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.fixture(scope="module")
def report_folder(tmp_path_factory):
    folder = build_multiseed_folder(tmp_path_factory.mktemp("report"))
    write_report(folder)
    return folder


@pytest.mark.parametrize("name", [MAE_FIGURE, CURVES_FIGURE, GAMES_FIGURE, COVERAGE_FIGURE])
def test_report_figure_is_nonempty_png(report_folder, name):
    path = report_folder / name
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size > 20_000
    height, width, channels = imread(path).shape
    assert width >= 1000
    assert height >= 500
    assert channels in (3, 4)


def test_report_markdown_links_every_figure(report_folder):
    text = (report_folder / REPORT_NAME).read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == [MAE_FIGURE, CURVES_FIGURE, GAMES_FIGURE, COVERAGE_FIGURE]
    for link in links:
        assert (report_folder / link).is_file(), link
    assert "### Test MAE across 3 seeds (seed 0, 1, 2)" in text
    assert "| average |" in text


def test_report_leaves_no_temporary_files(report_folder):
    assert not [p.name for p in report_folder.iterdir() if p.name.startswith(".")]


def test_report_without_intervals_skips_coverage(tmp_path):
    folder = build_multiseed_folder(tmp_path, with_intervals=False)
    write_report(folder)
    assert not (folder / COVERAGE_FIGURE).exists()
    assert COVERAGE_FIGURE not in (folder / REPORT_NAME).read_text()
    assert (folder / GAMES_FIGURE).stat().st_size > 20_000


def test_pick_example_games_spreads_evenly():
    ids = [str(i) for i in range(10)]
    assert pick_example_games(ids, 4) == ["0", "3", "6", "9"]
    assert pick_example_games(ids[:3], 4) == ["0", "1", "2"]
