"""Split-conformal prediction intervals for the six forecast horizons.

Fit on a calibration split the model never trained or tuned on: for each horizon and nominal
level (e.g. 0.9) the half-width is the split-conformal quantile of the absolute calibration
residuals |actual - predicted|. If calibration and test games are exchangeable, the symmetric
interval predicted +/- half-width then covers the actual value with probability at least the
nominal level, marginally over games (and at most level + 1/(n+1) when residuals have no
ties).
"""

import math

import numpy as np

from nba_ray import OUTCOME_MINUTES

DEFAULT_LEVELS = (0.8, 0.9, 0.95)
# Guards ceil() against floating-point noise: 10 * (1 - 0.7) is 3.0000000000000004, whose
# ceiling would be 4 instead of 3.
_CEIL_TOLERANCE = 1e-9


def conformal_rank(n: int, alpha: float) -> int:
    """The rank k = ceil((n + 1)(1 - alpha)) of the split-conformal quantile among n residuals."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    return max(1, math.ceil((n + 1) * (1.0 - alpha) - _CEIL_TOLERANCE))


def _quantile_1d(values: np.ndarray, alpha: float) -> float:
    values = np.abs(values[~np.isnan(values)])
    k = conformal_rank(values.size, alpha)
    if k > values.size:
        return math.inf
    return float(np.partition(values, k - 1)[k - 1])


def conformal_quantile(residuals: np.ndarray, alpha: float) -> float | np.ndarray:
    """Split-conformal quantile of the absolute residuals for miscoverage `alpha`.

    With n residuals this is the k-th smallest |residual|, k = ceil((n + 1)(1 - alpha)): the
    finite-sample correction that makes the interval cover a new exchangeable residual with
    probability >= 1 - alpha. When k > n (too few residuals for that level, e.g. n < 19 at
    alpha = 0.05) no finite residual guarantees the coverage and the result is +inf, i.e. an
    unbounded interval.

    `residuals` is a vector (returns a float) or an [n, h] matrix (returns an [h] array, one
    quantile per column). NaN residuals (games without an actual value) are left out, so n is
    the number of non-NaN residuals of that column. Signs are ignored.
    """
    residuals = np.asarray(residuals, dtype=np.float64)
    if residuals.ndim == 1:
        return _quantile_1d(residuals, alpha)
    if residuals.ndim == 2:
        return np.array([_quantile_1d(residuals[:, j], alpha) for j in range(residuals.shape[1])])
    raise ValueError(f"residuals must be 1-D or 2-D, got shape {list(residuals.shape)}")


def _as_outcomes(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != OUTCOME_MINUTES:
        raise ValueError(f"{name} must have shape [n, {OUTCOME_MINUTES}], got {list(array.shape)}")
    return array


def fit_intervals(
    predicted_cal: np.ndarray,
    actual_cal: np.ndarray,
    levels: tuple[float, ...] = DEFAULT_LEVELS,
) -> dict[float, np.ndarray]:
    """Half-widths per nominal coverage level: {level: [6] array}, from calibration forecasts.

    Rows with a NaN actual value are left out of that horizon. A half-width is +inf when the
    calibration set is too small for the level (see `conformal_quantile`).
    """
    predicted = _as_outcomes(predicted_cal, "predicted_cal")
    actual = _as_outcomes(actual_cal, "actual_cal")
    if predicted.shape != actual.shape:
        raise ValueError(
            f"predicted_cal {list(predicted.shape)} and actual_cal {list(actual.shape)} differ"
        )
    known = ~np.isnan(actual)
    if np.isnan(predicted[known]).any():
        raise ValueError("predicted_cal has NaN where the actual value is known")
    residuals = actual - predicted
    result: dict[float, np.ndarray] = {}
    for level in levels:
        level = float(level)
        if not 0.0 < level < 1.0:
            raise ValueError(f"coverage levels must lie strictly between 0 and 1, got {level}")
        result[level] = conformal_quantile(residuals, 1.0 - level)
    return result


def apply_intervals(
    predicted: np.ndarray, half_widths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric intervals (lower, upper) = predicted -/+ half_widths, each [m, 6]."""
    predicted = _as_outcomes(predicted, "predicted")
    half_widths = np.asarray(half_widths, dtype=np.float64)
    if half_widths.shape != (OUTCOME_MINUTES,):
        raise ValueError(
            f"half_widths must have shape [{OUTCOME_MINUTES}], got {list(half_widths.shape)}"
        )
    if (half_widths < 0).any() or np.isnan(half_widths).any():
        raise ValueError(f"half_widths must be non-negative, got {half_widths.tolist()}")
    return predicted - half_widths[None, :], predicted + half_widths[None, :]


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Share of games per horizon whose actual value lies in [lower, upper]: [6].

    Rows with a NaN actual value are left out of that horizon; a horizon with none is NaN.
    """
    actual = _as_outcomes(actual, "actual")
    lower = _as_outcomes(lower, "lower")
    upper = _as_outcomes(upper, "upper")
    if not (actual.shape == lower.shape == upper.shape):
        raise ValueError("actual, lower and upper must have the same shape")
    known = ~np.isnan(actual)
    hits = known & (lower <= actual) & (actual <= upper)
    counts = known.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits.sum(axis=0) / counts, np.nan)


def mean_width(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Mean interval width (upper - lower) per horizon: [6]; +inf if any interval is unbounded."""
    lower = _as_outcomes(lower, "lower")
    upper = _as_outcomes(upper, "upper")
    if lower.shape != upper.shape:
        raise ValueError("lower and upper must have the same shape")
    return (upper - lower).mean(axis=0)


def interval_report(
    predicted: np.ndarray, actual: np.ndarray, intervals: dict[float, np.ndarray]
) -> dict[float, dict[str, list[float]]]:
    """Per level: half-widths, per-horizon coverage and mean width of `intervals` on new games.

    Values are plain lists so the report can be written as JSON (+inf half-widths become
    `inf` floats, which `json.dumps` writes as Infinity).
    """
    report: dict[float, dict[str, list[float]]] = {}
    for level, half_widths in intervals.items():
        lower, upper = apply_intervals(predicted, half_widths)
        report[level] = {
            "half_width": np.asarray(half_widths, dtype=np.float64).tolist(),
            "coverage": coverage(actual, lower, upper).tolist(),
            "mean_width": mean_width(lower, upper).tolist(),
        }
    return report
