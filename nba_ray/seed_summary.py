"""Across-seed statistics of a multi-seed run: MAE spread, the seed-averaged forecast, coverage.

Every seed's scoring run (see `score_job.run_scoring`) leaves a `summary.json` and a results
table of the same test games. This module turns those into one summary: per forecaster the
mean, the sample standard deviation (ddof=1) and a Student t interval across seeds of the test
MAE, the paired bootstrap interval of the seed-averaged model forecast against persistence, and
conformal coverage and width averaged across seeds.
"""

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nba_ray.evaluation import (
    absolute_errors,
    comparison_record,
    horizon_minutes,
    paired_bootstrap_difference,
)

FORECASTERS = ("model", "persistence", "analog", "analog_delta", "ensemble")
SEED_MEAN = "seed_mean_model"
INTERVAL_METHOD = (
    "Student t interval over seeds: mean ± t(1 - alpha/2, n - 1) · std / sqrt(n), "
    "with std the sample standard deviation (ddof=1) of the per-seed test MAE"
)
# Simpson intervals for the t density integral. With them the quantiles in the tests agree
# with tabulated values to about 1e-10.
_SIMPSON_INTERVALS = 4000


def t_quantile(probability: float, df: int) -> float:
    """Return the `probability` quantile of Student's t distribution with `df` degrees of freedom.

    Inverts the CDF by bisection, with the CDF integrated by Simpson's rule, because SciPy is
    not a dependency of this project.
    """
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must lie strictly between 0 and 1, got {probability}")
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    if probability < 0.5:
        return -t_quantile(1.0 - probability, df)
    log_scale = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x: float) -> float:
        grid = np.linspace(0.0, x, _SIMPSON_INTERVALS + 1)
        density = np.exp(log_scale - (df + 1) / 2 * np.log1p(grid**2 / df))
        weights = np.ones_like(grid)
        weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
        return 0.5 + float(density @ weights) * (x / _SIMPSON_INTERVALS) / 3.0

    high = 1.0
    while cdf(high) < probability:
        high *= 2.0
    low = 0.0
    for _ in range(60):
        middle = (low + high) / 2
        if cdf(middle) < probability:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def across_seeds(values: np.ndarray, confidence: float = 0.95) -> dict[str, Any]:
    """Mean, sample standard deviation (ddof=1) and t interval over axis 0 (one row per seed).

    With a single seed the standard deviation and the interval bounds are None.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if n == 0:
        raise ValueError("no seeds to summarize")
    mean = values.mean(axis=0)
    if n < 2:
        std = np.full_like(mean, np.nan)
        half_width = std
    else:
        std = values.std(axis=0, ddof=1)
        half_width = t_quantile(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return {
        "mean": _plain(mean),
        "std": _plain(std),
        "ci_low": _plain(mean - half_width),
        "ci_high": _plain(mean + half_width),
        "per_seed": _plain(values),
    }


def _plain(array: np.ndarray) -> Any:
    array = np.asarray(array, dtype=np.float64)
    # JSON has no NaN, so missing values become null.
    if array.ndim == 0:
        return None if np.isnan(array) else float(array)
    return [_plain(item) for item in array]


def read_results(score_dir: Path) -> pa.Table:
    """Read a scoring run's results table, sorted by game id."""
    table = pq.read_table(Path(score_dir) / "results")
    return table.sort_by("game_id")


def matrix(table: pa.Table, column: str) -> np.ndarray:
    """Return a list column of a results table as a float64 [n, 6] matrix."""
    return np.stack(table[column].to_numpy(zero_copy_only=False)).astype(np.float64)


def summarize_seeds(
    seeds: list[int],
    score_dirs: list[Path],
    confidence: float = 0.95,
    bootstrap_samples: int = 2000,
) -> dict[str, Any]:
    """Combine the scoring runs of several seeds of one model into an across-seed summary.

    Raises ValueError when the runs scored different games, since their MAEs would then not
    be comparable.
    """
    summaries = [json.loads((Path(d) / "summary.json").read_text()) for d in score_dirs]
    tables = [read_results(d) for d in score_dirs]
    _check_same_games(seeds, tables)
    forecasters = [f for f in FORECASTERS if all(f in s["mae"] for s in summaries)]
    result: dict[str, Any] = {
        "seeds": list(seeds),
        "n_seeds": len(seeds),
        "n_games": summaries[0]["n_games"],
        "minutes": horizon_minutes(),
        "forecasters": forecasters,
        "confidence": confidence,
        "interval_method": INTERVAL_METHOD,
        "mae": {},
        "mae_average": {},
    }
    for name in forecasters:
        per_seed = np.array([s["mae"][name] for s in summaries])
        result["mae"][name] = across_seeds(per_seed, confidence)
        result["mae_average"][name] = across_seeds(per_seed.mean(axis=1), confidence)
    spread = np.ptp(np.array(result["mae"]["persistence"]["per_seed"]), axis=0)
    if spread.max() > 1e-9:
        raise ValueError(
            f"persistence MAE differs across seeds by up to {spread.max():.6f}; the seeds were "
            "scored on different games or splits, so rescore them on one test split"
        )
    result[SEED_MEAN] = seed_mean_comparison(tables, confidence, bootstrap_samples)
    if all("intervals" in s for s in summaries):
        result["intervals"] = _intervals_across_seeds(summaries, confidence)
    return result


def ordered_forecasters(names) -> list[str]:
    """Return forecaster names in the order of FORECASTERS, unknown names last.

    JSON files are written with sorted keys, so dict order alone would put "ensemble" first.
    """
    rank = {name: index for index, name in enumerate(FORECASTERS)}
    return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))


def _check_same_games(seeds: list[int], tables: list[pa.Table]) -> None:
    reference = tables[0]["game_id"].to_pylist()
    for seed, table in zip(seeds[1:], tables[1:], strict=True):
        if table["game_id"].to_pylist() != reference:
            raise ValueError(
                f"seed {seed} scored other games than seed {seeds[0]}; rescore every seed on "
                "the same test split"
            )


def seed_mean_comparison(
    tables: list[pa.Table], confidence: float, bootstrap_samples: int
) -> dict[str, Any]:
    """MAE of the forecast averaged over seeds, and its paired bootstrap against persistence.

    The bootstrap resamples test games (seed 0 of the generator), as in `summarize`.
    """
    actual = matrix(tables[0], "actual")
    known = ~np.isnan(actual).all(axis=1)
    actual = actual[known]
    forecast = np.mean([matrix(t, "forecast")[known] for t in tables], axis=0)
    persistence = matrix(tables[0], "persistence")[known]
    errors = absolute_errors(forecast, actual, "seed-averaged forecast")
    persistence_errors = absolute_errors(persistence, actual, "persistence")
    comparison = paired_bootstrap_difference(
        errors, persistence_errors, samples=bootstrap_samples, seed=0, confidence=confidence
    )
    mae = np.nanmean(errors, axis=0)
    return {
        "mae": _plain(mae),
        "mae_average": float(mae.mean()),
        "minus_persistence": comparison_record(comparison),
    }


def _intervals_across_seeds(summaries: list[dict], confidence: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for forecaster in ordered_forecasters(summaries[0]["intervals"]):
        levels = summaries[0]["intervals"][forecaster]
        out[forecaster] = {}
        for level in sorted(levels, key=float):
            reports = [s["intervals"][forecaster][level] for s in summaries]
            coverage = np.array([r["coverage"] for r in reports])
            width = np.array([r["mean_width"] for r in reports])
            out[forecaster][level] = {
                "coverage": across_seeds(coverage, confidence),
                "coverage_average": across_seeds(coverage.mean(axis=1), confidence),
                "mean_width": across_seeds(width, confidence),
                "mean_width_average": across_seeds(width.mean(axis=1), confidence),
            }
    return out


def write_seeds_csv(path: Path, summary: dict[str, Any]) -> None:
    """Write one row per seed and minute (plus an "average" row per seed) of test MAE."""
    names = summary["forecasters"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seed", "minute", *names])
        for index, seed in enumerate(summary["seeds"]):
            for column, minute in enumerate(summary["minutes"]):
                values = [summary["mae"][n]["per_seed"][index][column] for n in names]
                writer.writerow([seed, minute, *(f"{v:.6f}" for v in values)])
            averages = [summary["mae_average"][n]["per_seed"][index] for n in names]
            writer.writerow([seed, "average", *(f"{v:.6f}" for v in averages)])
