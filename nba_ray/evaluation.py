"""Forecast accuracy: per-horizon MAE, paired bootstrap comparisons and results tables.

Accuracy is always reported next to the persistence baseline (minute-17 differential held
constant): `summarize` requires the persistence forecast and reports the model's difference
from it with a paired-bootstrap confidence interval over games.
"""

import math
from typing import Any

import numpy as np

from nba_ray import OUTCOME_MINUTES, PATTERN_MINUTES

PERSISTENCE = "persistence"
# Bootstrap samples are drawn in blocks of at most this many (sample, game) pairs, which bounds
# the memory of one block to about 24 bytes per pair (draws, counts and their float copy).
_BOOTSTRAP_BLOCK_ELEMENTS = 4_000_000


def _as_outcomes(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != OUTCOME_MINUTES:
        raise ValueError(f"{name} must have shape [n, {OUTCOME_MINUTES}], got {list(array.shape)}")
    return array


def horizon_minutes() -> list[int]:
    """Game minute of each forecast horizon: horizon h (1-6) is minute 17 + h, i.e. 18..23."""
    return [PATTERN_MINUTES - 1 + h for h in range(1, OUTCOME_MINUTES + 1)]


def absolute_errors(pred: np.ndarray, actual: np.ndarray, name: str = "pred") -> np.ndarray:
    """|pred - actual| [n, 6], NaN where the actual value is NaN.

    Raises ValueError if a forecast is NaN where the actual value is known, since dropping such
    rows silently would compare forecasters on different games.
    """
    pred = _as_outcomes(pred, name)
    actual = _as_outcomes(actual, "actual")
    if pred.shape != actual.shape:
        raise ValueError(f"{name} {list(pred.shape)} and actual {list(actual.shape)} differ")
    known = ~np.isnan(actual)
    if np.isnan(pred[known]).any():
        raise ValueError(f"{name} has NaN forecasts where the actual value is known")
    return np.where(known, np.abs(pred - actual), np.nan)


def _nan_column_mean(errors: np.ndarray) -> np.ndarray:
    known = ~np.isnan(errors)
    counts = known.sum(axis=0)
    totals = np.where(known, errors, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / counts, np.nan)


def mae_per_horizon(pred: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Mean absolute error per horizon [6]; rows with a NaN actual are left out of that horizon.

    A horizon without any known actual value is NaN.
    """
    return _nan_column_mean(absolute_errors(pred, actual))


def paired_bootstrap_difference(
    errors_a: np.ndarray,
    errors_b: np.ndarray,
    samples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Paired bootstrap of the MAE difference a - b, resampling games (rows) with replacement.

    `errors_a` and `errors_b` are absolute errors [n, h] of two forecasters on the same games,
    NaN where the actual value is unknown (the NaN pattern must match). Each bootstrap sample
    draws n rows with replacement and uses the same rows for a and b, so the interval reflects
    the paired design. Per horizon the statistic is mean(a) - mean(b) over the drawn rows with a
    known actual; the "average" statistic is the mean of the per-horizon differences (the
    difference of MAEs averaged over horizons).

    Returns a dict with the observed (not bootstrap-mean) differences and percentile intervals:
    `difference`, `ci_low`, `ci_high` (floats, averaged over horizons),
    `difference_per_horizon`, `ci_low_per_horizon`, `ci_high_per_horizon` ([h] arrays), and
    `confidence`, `samples`, `seed`, `n_games`. Negative differences mean a is more accurate.
    """
    a = np.asarray(errors_a, dtype=np.float64)
    b = np.asarray(errors_b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"errors_a {list(a.shape)} and errors_b {list(b.shape)} must be [n, h] of one shape"
        )
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        raise ValueError("errors_a and errors_b must be NaN on the same games and horizons")
    if a.shape[0] == 0:
        raise ValueError("no games to compare")
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")

    n, h = a.shape
    known = (~np.isnan(a)).astype(np.float64)
    diff = np.where(known > 0, a - b, 0.0)
    observed = _nan_column_mean(np.where(known > 0, a - b, np.nan))

    rng = np.random.default_rng(seed)
    boot = np.empty((samples, h), dtype=np.float64)
    block = max(1, min(samples, _BOOTSTRAP_BLOCK_ELEMENTS // n))
    for start in range(0, samples, block):
        size = min(block, samples - start)
        rows = rng.integers(0, n, size=(size, n))
        # Row j of `counts` says how often each game was drawn in sample start + j.
        flat = (rows + (np.arange(size) * n)[:, None]).ravel()
        counts = np.bincount(flat, minlength=size * n).reshape(size, n).astype(np.float64)
        totals = counts @ diff
        drawn = counts @ known
        with np.errstate(invalid="ignore", divide="ignore"):
            boot[start : start + size] = np.where(drawn > 0, totals / drawn, np.nan)

    tail = 100.0 * (1.0 - confidence) / 2.0
    with np.errstate(invalid="ignore"):
        boot_average = boot.mean(axis=1)
    low_h, high_h = np.nanpercentile(boot, [tail, 100.0 - tail], axis=0)
    low, high = np.nanpercentile(boot_average, [tail, 100.0 - tail])
    return {
        "difference": float(np.mean(observed)),
        "ci_low": float(low),
        "ci_high": float(high),
        "difference_per_horizon": observed,
        "ci_low_per_horizon": low_h,
        "ci_high_per_horizon": high_h,
        "confidence": float(confidence),
        "samples": int(samples),
        "seed": int(seed),
        "n_games": int(n),
    }


def summarize(
    actual: np.ndarray,
    model: np.ndarray,
    persistence: np.ndarray,
    others: dict[str, np.ndarray] | None = None,
    *,
    model_name: str = "model",
    samples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Results-table summary of forecasts [n, 6] against `actual` [n, 6], JSON-serializable.

    `persistence` is required so the model's error is never reported without the baseline.
    `others` adds named forecasts (e.g. {"analog": ..., "ensemble": ...}) as extra columns.
    Returns per-horizon and horizon-averaged MAE of every forecaster, the difference
    model - persistence with a paired-bootstrap interval over games, and game counts.
    """
    if persistence is None:
        raise ValueError("summarize needs the persistence forecast to report the model beside it")
    forecasts: dict[str, np.ndarray] = {model_name: model, PERSISTENCE: persistence}
    for name, forecast in (others or {}).items():
        if name in forecasts:
            raise ValueError(f"forecaster name {name!r} is used twice")
        forecasts[name] = forecast

    actual = _as_outcomes(actual, "actual")
    errors = {name: absolute_errors(f, actual, name) for name, f in forecasts.items()}
    mae = {name: _nan_column_mean(e) for name, e in errors.items()}
    comparison = paired_bootstrap_difference(
        errors[model_name], errors[PERSISTENCE], samples=samples, seed=seed, confidence=confidence
    )
    return {
        "n_games": int(actual.shape[0]),
        "n_games_per_horizon": (~np.isnan(actual)).sum(axis=0).astype(int).tolist(),
        "minutes": horizon_minutes(),
        "model": model_name,
        "forecasters": list(forecasts),
        "mae": {name: values.tolist() for name, values in mae.items()},
        "mae_average": {name: float(np.mean(values)) for name, values in mae.items()},
        "model_minus_persistence": comparison_record(comparison),
    }


def _json_values(values: Any) -> Any:
    """Return floats or nested lists of floats, with NaN as None because JSON has no NaN."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        return None if np.isnan(array) else float(array)
    return [_json_values(item) for item in array]


def comparison_record(comparison: dict[str, Any]) -> dict[str, Any]:
    """Return a `paired_bootstrap_difference` result as JSON-compatible summary fields."""
    return {
        "difference": _json_values(comparison["difference_per_horizon"]),
        "ci_low": _json_values(comparison["ci_low_per_horizon"]),
        "ci_high": _json_values(comparison["ci_high_per_horizon"]),
        "average": _json_values(comparison["difference"]),
        "average_ci_low": _json_values(comparison["ci_low"]),
        "average_ci_high": _json_values(comparison["ci_high"]),
        "confidence": comparison["confidence"],
        "samples": comparison["samples"],
        "seed": comparison["seed"],
        "n_games": comparison["n_games"],
    }


def _fmt(value: float, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def summary_markdown(summary: dict[str, Any], digits: int = 3) -> str:
    """Markdown table of a `summarize` result: one row per minute 18-23 plus an average row.

    Columns: minute, horizon, the MAE of each forecaster (model and persistence first), the
    difference model - persistence and its bootstrap interval. A caption line with the number
    of games and the bootstrap settings follows the table.
    """
    names = summary["forecasters"]
    model_name = summary["model"]
    if PERSISTENCE not in names or PERSISTENCE not in summary["mae"]:
        raise ValueError("summary has no persistence forecast; build it with summarize()")
    cmp = summary["model_minus_persistence"]
    level = f"{100 * cmp['confidence']:g}% CI"
    header = ["minute", "horizon", *names, f"{model_name} - {PERSISTENCE}", level]
    align = ["---:"] * (len(header) - 1) + [":---:"]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for i, minute in enumerate(summary["minutes"]):
        cells = [str(minute), str(i + 1)]
        cells += [_fmt(summary["mae"][name][i], digits) for name in names]
        cells.append(_fmt(cmp["difference"][i], digits))
        cells.append(f"[{_fmt(cmp['ci_low'][i], digits)}, {_fmt(cmp['ci_high'][i], digits)}]")
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["average", ""]
    cells += [_fmt(summary["mae_average"][name], digits) for name in names]
    cells.append(_fmt(cmp["average"], digits))
    cells.append(f"[{_fmt(cmp['average_ci_low'], digits)}, {_fmt(cmp['average_ci_high'], digits)}]")
    lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"MAE in points of home-minus-away differential over {summary['n_games']} games; "
        f"{level} from a paired bootstrap over games ({cmp['samples']} resamples, "
        f"seed {cmp['seed']}). Negative differences favour {model_name}."
    )
    return "\n".join(lines) + "\n"
