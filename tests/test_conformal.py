import math

import numpy as np
import pytest

from nba_ray.conformal import (
    apply_intervals,
    conformal_quantile,
    conformal_rank,
    coverage,
    fit_intervals,
    interval_report,
    mean_width,
)


def test_quantile_of_known_residuals():
    residuals = np.arange(1.0, 11.0)
    # k = ceil(11 * 0.8) = ceil(8.8) = 9 -> 9th smallest of 1..10.
    assert conformal_quantile(residuals, 0.2) == 9.0
    # Signs are ignored and order does not matter.
    assert conformal_quantile(-residuals[::-1], 0.2) == 9.0
    # k = ceil(11 * 0.5) = 6.
    assert conformal_quantile(residuals, 0.5) == 6.0


def test_quantile_is_infinite_when_rank_exceeds_n():
    # alpha = 0.05: k = ceil(11 * 0.95) = ceil(10.45) = 11 > 10.
    assert conformal_quantile(np.arange(1.0, 11.0), 0.05) == math.inf
    assert conformal_quantile(np.array([]), 0.5) == math.inf


def test_rank_is_robust_to_float_noise():
    # 10 * (1 - 0.7) is 3.0000000000000004 and 100 * (1 - 0.45) is 55.00000000000001 in
    # floating point; the ranks must still be 3 and 55.
    assert conformal_rank(9, 0.7) == 3
    assert conformal_rank(99, 0.45) == 55
    assert conformal_rank(99, 0.05) == 95
    assert conformal_rank(9, 0.1) == 9
    with pytest.raises(ValueError, match="alpha"):
        conformal_rank(10, 0.0)


def test_quantile_per_column_ignores_nan():
    residuals = np.column_stack([np.arange(1.0, 11.0), np.arange(10.0, 110.0, 10.0)])
    residuals[9, 1] = np.nan  # column 2 now has n = 9 residuals 10..90
    # Column 1: k = 9 -> 9. Column 2: k = ceil(10 * 0.8) = 8 -> 80.
    np.testing.assert_array_equal(conformal_quantile(residuals, 0.2), [9.0, 80.0])


def test_fit_and_apply_intervals():
    actual = np.tile(np.arange(1.0, 11.0)[:, None], (1, 6))
    predicted = np.zeros_like(actual)
    intervals = fit_intervals(predicted, actual, levels=(0.8, 0.95))
    assert set(intervals) == {0.8, 0.95}
    np.testing.assert_array_equal(intervals[0.8], np.full(6, 9.0))
    assert np.isinf(intervals[0.95]).all()
    lower, upper = apply_intervals(np.ones((2, 6)), intervals[0.8])
    np.testing.assert_array_equal(lower, np.full((2, 6), -8.0))
    np.testing.assert_array_equal(upper, np.full((2, 6), 10.0))


def test_coverage_hand_made_case():
    lower = np.zeros((4, 6))
    upper = np.ones((4, 6))
    actual = np.array(
        [
            [0.5, 0.0, 1.0, 2.0, -1.0, np.nan],
            [0.5, 0.5, 1.5, 2.0, 0.5, 0.5],
            [0.5, 0.5, 0.5, 2.0, 0.5, np.nan],
            [0.5, 2.0, 0.5, 2.0, 0.5, 5.0],
        ]
    )
    # Endpoints count as covered; NaN actuals are left out of their horizon.
    expected = [4 / 4, 3 / 4, 3 / 4, 0 / 4, 3 / 4, 1 / 2]
    np.testing.assert_allclose(coverage(actual, lower, upper), expected)
    np.testing.assert_allclose(mean_width(lower, upper), np.ones(6))


def test_coverage_all_nan_horizon_is_nan():
    actual = np.full((3, 6), 0.5)
    actual[:, 4] = np.nan
    result = coverage(actual, np.zeros((3, 6)), np.ones((3, 6)))
    assert np.isnan(result[4])
    np.testing.assert_array_equal(np.delete(result, 4), np.ones(5))


def test_conformal_coverage_on_exchangeable_synthetic_data():
    rng = np.random.default_rng(20240518)
    scales = np.array([1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    n_cal, n_test = 2000, 20000
    predicted_cal = rng.normal(scale=5.0, size=(n_cal, 6))
    actual_cal = predicted_cal + rng.normal(size=(n_cal, 6)) * scales
    predicted_test = rng.normal(scale=5.0, size=(n_test, 6))
    actual_test = predicted_test + rng.normal(size=(n_test, 6)) * scales

    intervals = fit_intervals(predicted_cal, actual_cal, levels=(0.8, 0.9, 0.95))
    report = interval_report(predicted_test, actual_test, intervals)
    for level, half_widths in intervals.items():
        lower, upper = apply_intervals(predicted_test, half_widths)
        covered = coverage(actual_test, lower, upper)
        # Coverage averaged over horizons is within 1.5 points of nominal. A single horizon's
        # coverage varies with its own 2000 calibration residuals (sd ~0.9 points at level 0.8),
        # so requiring 1.5 points per horizon fails for over half of all seeds; each horizon
        # gets 3.5 points (> 3.5 sd) instead. Over seeds 0-299 both checks always pass.
        assert abs(covered.mean() - level) <= 0.015, (level, covered)
        assert np.all(np.abs(covered - level) <= 0.035), (level, covered)
        np.testing.assert_allclose(report[level]["coverage"], covered)
        np.testing.assert_allclose(report[level]["mean_width"], 2 * half_widths)
