"""Reference forecasts the model is judged against, and the model / analog ensemble.

Every forecast here maps minutes 0-17 of the home-minus-away differential (the pattern,
`PATTERN_MINUTES` values) to minutes 18-23 (the outcome, `OUTCOME_MINUTES` values, horizons 1-6).

- `persistence_forecast`: the differential at minute 17 held for all six horizons.
- `AnalogForecaster`: the per-horizon median outcome of the k training games whose normalized
  patterns are nearest to the query's (mode "level"), or the query's minute-17 value plus the
  median of the neighbours' change from their own minute 17 (mode "delta").
- `fit_ensemble_weights` / `ensemble_forecast`: per-horizon convex blend of model and analog.
"""

from typing import Literal

import numpy as np

from nba_ray import OUTCOME_MINUTES, PATTERN_MINUTES

ENSEMBLE_WEIGHT_GRID = np.round(np.linspace(0.0, 1.0, 101), 2)


def _as_matrix(array: np.ndarray, columns: int, name: str) -> np.ndarray:
    """Return `array` as a float64 [n, columns] matrix, or raise ValueError naming it."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != columns:
        raise ValueError(f"{name} must have shape [n, {columns}], got {list(array.shape)}")
    return array


def _as_vector(array: np.ndarray, length: int, name: str) -> np.ndarray:
    """Return `array` as a float64 vector of `length` values, or raise ValueError naming it."""
    array = np.asarray(array, dtype=np.float64)
    if array.shape != (length,):
        raise ValueError(f"{name} must have shape [{length}], got {list(array.shape)}")
    return array


def persistence_forecast(pattern: np.ndarray) -> np.ndarray:
    """Repeat the last observed differential (minute 17) for every horizon: [n, 18] -> [n, 6]."""
    pattern = _as_matrix(pattern, PATTERN_MINUTES, "pattern")
    return np.repeat(pattern[:, -1:], OUTCOME_MINUTES, axis=1)


class AnalogForecaster:
    """k-nearest-neighbour ("analog") forecast over normalized 18-minute patterns.

    Neighbours are the k training games with the smallest Euclidean distance between normalized
    patterns (ties broken arbitrarily). Mode "level" forecasts the per-horizon median of the
    neighbours' outcomes; mode "delta" forecasts `query_last` plus the per-horizon median of the
    neighbours' `outcome - train_last`, i.e. it borrows the neighbours' movement rather than
    their level. `train_last` / `query_last` are the raw (unnormalized) minute-17 differentials.

    NaN training outcomes (games not observed through minute 23) are skipped in the median of
    their horizon; a horizon whose k neighbours are all NaN gets NaN. Patterns must be finite.
    Queries are processed `chunk_size` at a time so memory stays at chunk_size x n_train floats.
    """

    def __init__(
        self,
        k: int = 500,
        mode: Literal["level", "delta"] = "level",
        chunk_size: int = 256,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if mode not in ("level", "delta"):
            raise ValueError(f"mode must be 'level' or 'delta', got {mode!r}")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.k = int(k)
        self.mode = mode
        self.chunk_size = int(chunk_size)
        self._patterns: np.ndarray | None = None
        self._targets: np.ndarray | None = None
        self._sq_norms: np.ndarray | None = None
        self._has_nan_targets = False

    def fit(
        self,
        train_patterns_normalized: np.ndarray,
        train_outcomes: np.ndarray,
        train_last: np.ndarray | None = None,
    ) -> "AnalogForecaster":
        """Store the training games; `train_last` [n] is required in mode "delta"."""
        patterns = _as_matrix(train_patterns_normalized, PATTERN_MINUTES, "train patterns")
        outcomes = _as_matrix(train_outcomes, OUTCOME_MINUTES, "train outcomes")
        n = patterns.shape[0]
        if outcomes.shape[0] != n:
            raise ValueError(
                f"train patterns have {n} rows but train outcomes have {outcomes.shape[0]}"
            )
        if self.k > n:
            raise ValueError(
                f"k={self.k} neighbours requested but only {n} training games were given; "
                f"use k <= {n}"
            )
        if not np.isfinite(patterns).all():
            raise ValueError("train patterns contain NaN or infinite values")
        if self.mode == "delta":
            if train_last is None:
                raise ValueError("mode 'delta' needs train_last (raw minute-17 differentials)")
            last = _as_vector(train_last, n, "train_last")
            if not np.isfinite(last).all():
                raise ValueError("train_last contains NaN or infinite values")
            targets = outcomes - last[:, None]
        else:
            targets = outcomes
        self._patterns = np.ascontiguousarray(patterns)
        self._targets = np.ascontiguousarray(targets)
        self._sq_norms = np.einsum("ij,ij->i", patterns, patterns)
        self._has_nan_targets = bool(np.isnan(targets).any())
        return self

    def neighbours(self, query_patterns_normalized: np.ndarray) -> np.ndarray:
        """Row indices [m, k] of each query's k nearest training games, nearest first."""
        if self._patterns is None:
            raise RuntimeError("AnalogForecaster.fit must be called before predicting")
        queries = _as_matrix(query_patterns_normalized, PATTERN_MINUTES, "query patterns")
        if not np.isfinite(queries).all():
            raise ValueError("query patterns contain NaN or infinite values")
        k, n = self.k, self._patterns.shape[0]
        result = np.empty((queries.shape[0], k), dtype=np.int64)
        for start in range(0, queries.shape[0], self.chunk_size):
            chunk = queries[start : start + self.chunk_size]
            # |q - t|^2 = |q|^2 + |t|^2 - 2 q.t; |q|^2 is constant per row and does not change
            # the ranking, so it is left out.
            distances = self._sq_norms[None, :] - 2.0 * (chunk @ self._patterns.T)
            if k < n:
                idx = np.argpartition(distances, k - 1, axis=1)[:, :k]
            else:
                idx = np.broadcast_to(np.arange(n), (chunk.shape[0], n))
            order = np.argsort(np.take_along_axis(distances, idx, axis=1), axis=1, kind="stable")
            result[start : start + chunk.shape[0]] = np.take_along_axis(idx, order, axis=1)
        return result

    def predict(
        self,
        query_patterns_normalized: np.ndarray,
        query_last: np.ndarray | None = None,
    ) -> np.ndarray:
        """Forecast [m, 6]; `query_last` [m] (raw minute-17 differential) needed in "delta"."""
        if self._patterns is None:
            raise RuntimeError("AnalogForecaster.fit must be called before predicting")
        queries = _as_matrix(query_patterns_normalized, PATTERN_MINUTES, "query patterns")
        m = queries.shape[0]
        if self.mode == "delta":
            if query_last is None:
                raise ValueError("mode 'delta' needs query_last (raw minute-17 differentials)")
            last = _as_vector(query_last, m, "query_last")
        median = np.nanmedian if self._has_nan_targets else np.median
        forecast = np.empty((m, OUTCOME_MINUTES), dtype=np.float64)
        for start in range(0, m, self.chunk_size):
            idx = self.neighbours(queries[start : start + self.chunk_size])
            forecast[start : start + idx.shape[0]] = median(self._targets[idx], axis=1)
        if self.mode == "delta":
            forecast += last[:, None]
        return forecast


def _validate_ensemble_inputs(
    model: np.ndarray, analog: np.ndarray, actual: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    model = _as_matrix(model, OUTCOME_MINUTES, "model forecast")
    analog = _as_matrix(analog, OUTCOME_MINUTES, "analog forecast")
    actual = _as_matrix(actual, OUTCOME_MINUTES, "actual outcome")
    if not (model.shape == analog.shape == actual.shape):
        raise ValueError(
            f"model {list(model.shape)}, analog {list(analog.shape)} and actual "
            f"{list(actual.shape)} must have the same shape"
        )
    return model, analog, actual


def fit_ensemble_weights(
    model_val: np.ndarray, analog_val: np.ndarray, actual_val: np.ndarray
) -> np.ndarray:
    """Per-horizon model weight w in [0, 1] minimising validation MAE of w*model + (1-w)*analog.

    Grid search over w = 0.00, 0.01, ..., 1.00. Rows whose actual value is NaN are left out of
    that horizon. MAE is convex in w, so the grid minimum is within 0.01 of the true one; when
    several grid points tie (a flat minimum), the one nearest 0.5 is taken. Returns [6].
    """
    model, analog, actual = _validate_ensemble_inputs(model_val, analog_val, actual_val)
    weights = np.empty(OUTCOME_MINUTES, dtype=np.float64)
    for h in range(OUTCOME_MINUTES):
        rows = np.isfinite(actual[:, h])
        if not rows.any():
            raise ValueError(f"horizon {h + 1} has no validation rows with an actual value")
        m, a, y = model[rows, h], analog[rows, h], actual[rows, h]
        if not (np.isfinite(m).all() and np.isfinite(a).all()):
            raise ValueError(f"horizon {h + 1}: forecasts contain NaN where the actual is known")
        # blend - y = a - y + w (m - a): one [grid, n] array per horizon.
        errors = np.abs((a - y)[None, :] + ENSEMBLE_WEIGHT_GRID[:, None] * (m - a)[None, :])
        mae = errors.mean(axis=1)
        tol = 1e-12 * max(1.0, float(mae.min()))
        ties = np.flatnonzero(mae <= mae.min() + tol)
        weights[h] = ENSEMBLE_WEIGHT_GRID[ties[np.argmin(np.abs(ENSEMBLE_WEIGHT_GRID[ties] - 0.5))]]
    return weights


def ensemble_forecast(model: np.ndarray, analog: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Blend [n, 6] forecasts per horizon: weights * model + (1 - weights) * analog."""
    model = _as_matrix(model, OUTCOME_MINUTES, "model forecast")
    analog = _as_matrix(analog, OUTCOME_MINUTES, "analog forecast")
    if model.shape != analog.shape:
        raise ValueError(
            f"model {list(model.shape)} and analog {list(analog.shape)} must have the same shape"
        )
    weights = _as_vector(weights, OUTCOME_MINUTES, "weights")
    if not ((weights >= 0.0) & (weights <= 1.0)).all():
        raise ValueError(f"weights must lie in [0, 1], got {weights.tolist()}")
    return weights[None, :] * model + (1.0 - weights[None, :]) * analog
