"""Chronological train / val / cal / test splits by game date, written as Parquet folders.

Every unique game date belongs to exactly one split, and later splits hold later dates, so no
day's games inform the model in training while others of that day are evaluated.
"""

import csv
import json
import logging
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nba_ray import atomic, features, provenance
from nba_ray.config import SPLIT_NAMES, DataConfig, config_to_dict
from nba_ray.ingest import OUTCOME_END_S, DataError, build_game_series, read_timeline

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
SKIPPED_NAME = "skipped_games.csv"


def load_games(timeline_path: Path, min_observed_s: int = OUTCOME_END_S):
    """Read a timeline file and return per-game series with leak-free context features."""
    timeline = read_timeline(timeline_path)
    series = build_game_series(timeline, str(timeline_path), min_observed_s)
    games = features.add_context_features(series.games)
    return games, series.skipped


def select_games(games: pa.Table, season_types: list[str], seasons: list[str]) -> pa.Table:
    """Keep games of the given season types and seasons (all seasons when the list is empty)."""
    mask = pc.is_in(games["season_type"], value_set=pa.array(season_types))
    if seasons:
        unknown = sorted(set(seasons) - set(games["season"].to_pylist()))
        if unknown:
            raise DataError(
                f"season(s) {', '.join(unknown)} are not in the timeline; available: "
                f"{', '.join(sorted(set(games['season'].to_pylist())))}"
            )
        mask = pc.and_(mask, pc.is_in(games["season"], value_set=pa.array(seasons)))
    return games.filter(mask)


def assign_splits(dates: np.ndarray, config: DataConfig) -> np.ndarray:
    """Return the split index (0 = train ... 3 = test) of each game, chosen by its date."""
    unique_dates = np.unique(dates)
    if config.boundaries is not None:
        bounds = np.array(
            [config.boundaries.val, config.boundaries.cal, config.boundaries.test],
            dtype="datetime64[D]",
        )
        if not (bounds[0] < bounds[1] < bounds[2]):
            raise DataError("split boundaries must satisfy val < cal < test dates")
        return np.searchsorted(bounds, dates, side="right")
    fractions = np.array([getattr(config.fractions, name) for name in SPLIT_NAMES])
    # The study's proportions sum to 0.999, so fractions are rescaled when they sum to about 1.
    if np.any(fractions <= 0) or abs(fractions.sum() - 1.0) > 0.01:
        raise DataError(
            f"split fractions {fractions.tolist()} must be positive and sum to 1; "
            "fix data.fractions in the config"
        )
    fractions = fractions / fractions.sum()
    if len(unique_dates) < len(SPLIT_NAMES):
        raise DataError(
            f"only {len(unique_dates)} game dates selected; four splits need at least four"
        )
    # Cut the ordered dates at cumulative fractions of games, never inside a date.
    games_per_date = np.searchsorted(np.sort(dates), unique_dates, side="right")
    cumulative_share = games_per_date / len(dates)
    cuts = np.searchsorted(cumulative_share, np.cumsum(fractions)[:-1], side="left") + 1
    cuts = np.minimum(np.maximum(cuts, np.arange(1, 4)), len(unique_dates) - np.arange(3, 0, -1))
    first_dates = unique_dates[cuts]
    return np.searchsorted(first_dates, dates, side="right")


def prepare_splits(config: DataConfig, root: Path, config_record: dict | None = None) -> dict:
    """Build the splits, replace `output_dir` atomically and return the manifest."""
    started = time.perf_counter()
    timeline_path = root / config.timeline_path
    output_dir = root / config.output_dir
    games, skipped = load_games(timeline_path)
    selected = select_games(games, config.season_types, config.seasons)
    if selected.num_rows == 0:
        raise DataError(
            f"{timeline_path}: no games left after selecting season types {config.season_types} "
            f"and seasons {config.seasons or 'all'}; widen the selection"
        )
    dates = selected["game_date"].to_numpy().astype("datetime64[D]")
    order = np.lexsort((selected["game_id"].to_numpy(zero_copy_only=False), dates))
    selected = selected.take(pa.array(order))
    split_index = assign_splits(dates[order], config)

    manifest = {
        "timeline_path": str(config.timeline_path),
        "timeline_sha256": provenance.file_fingerprint(timeline_path),
        "config": config_record or config_to_dict(config),
        "versions": provenance.package_versions(),
        "skipped_games": len(skipped),
        "splits": {},
    }
    with atomic.staged_dir(output_dir) as staging:
        for index, name in enumerate(SPLIT_NAMES):
            part = selected.filter(pa.array(split_index == index))
            if config.max_games_per_split is not None:
                part = part.slice(max(0, part.num_rows - config.max_games_per_split))
            if part.num_rows == 0:
                raise DataError(f"split {name} is empty; adjust the fractions or boundaries")
            (staging / name).mkdir()
            pq.write_table(part, staging / name / "games.parquet")
            manifest["splits"][name] = _split_summary(part)
        _write_skipped(staging / SKIPPED_NAME, skipped)
        manifest["splits_sha256"] = provenance.folder_fingerprint(staging)
        manifest["seconds"] = round(time.perf_counter() - started, 3)
        atomic.write_json(staging / MANIFEST_NAME, manifest)
    logger.info("wrote splits to %s in %.1f s", output_dir, manifest["seconds"])
    return manifest


def _split_summary(part: pa.Table) -> dict:
    dates = part["game_date"]
    return {
        "games": part.num_rows,
        "first_date": pc.min(dates).as_py().isoformat(),
        "last_date": pc.max(dates).as_py().isoformat(),
        "seasons": sorted(set(part["season"].to_pylist())),
    }


def _write_skipped(path: Path, skipped: list) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["game_id", "reason"])
        writer.writerows([item.game_id, item.reason] for item in skipped)


def read_manifest(splits_dir: Path) -> dict:
    """Read the manifest the prepare job wrote next to the splits."""
    path = Path(splits_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DataError(
            f"{path} not found; run `python jobs/prepare.py --config configs/data.yaml` first"
        )
    return json.loads(path.read_text())


def format_split_table(manifest: dict) -> str:
    """Return a fixed-width table of games and date range per split."""
    rows = [f"{'split':<6} {'games':>6}  {'first date':<10}  {'last date':<10}"]
    for name, info in manifest["splits"].items():
        rows.append(
            f"{name:<6} {info['games']:>6}  {info['first_date']:<10}  {info['last_date']:<10}"
        )
    return "\n".join(rows)
