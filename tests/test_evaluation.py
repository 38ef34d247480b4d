import json

import numpy as np
import pytest

from nba_ray.evaluation import (
    mae_per_horizon,
    paired_bootstrap_difference,
    summarize,
    summary_markdown,
)


def test_mae_per_horizon_excludes_nan_actuals():
    actual = np.array([[1.0] * 6, [3.0] * 6, [np.nan] * 3 + [5.0] * 3])
    pred = np.zeros((3, 6))
    expected = [2.0, 2.0, 2.0, 3.0, 3.0, 3.0]
    np.testing.assert_allclose(mae_per_horizon(pred, actual), expected)


def test_mae_rejects_nan_forecast_with_known_actual():
    pred = np.zeros((2, 6))
    pred[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN forecasts"):
        mae_per_horizon(pred, np.ones((2, 6)))
    # A NaN forecast where the actual is unknown is fine.
    actual = np.ones((2, 6))
    actual[0, 0] = np.nan
    assert mae_per_horizon(pred, actual)[0] == 1.0


def test_bootstrap_identical_errors_has_zero_width():
    errors = np.abs(np.random.default_rng(0).normal(size=(50, 6)))
    result = paired_bootstrap_difference(errors, errors.copy(), samples=200)
    assert result["difference"] == 0.0
    assert result["ci_low"] == result["ci_high"] == 0.0
    np.testing.assert_array_equal(result["ci_low_per_horizon"], np.zeros(6))
    np.testing.assert_array_equal(result["ci_high_per_horizon"], np.zeros(6))


def test_bootstrap_interval_contains_true_difference():
    rng = np.random.default_rng(7)
    n = 2000
    errors_b = np.abs(rng.normal(scale=3.0, size=(n, 6)))
    # a is worse than b by 0.3 points on average, per game noise sd 1.
    errors_a = errors_b + 0.3 + rng.normal(size=(n, 6))
    result = paired_bootstrap_difference(errors_a, errors_b, samples=2000, seed=1)
    assert result["ci_low"] < 0.3 < result["ci_high"]
    assert (result["ci_low_per_horizon"] < 0.3).all()
    assert (result["ci_high_per_horizon"] > 0.3).all()
    # Per-horizon width should be near 2 * 1.96 * 1 / sqrt(n) = 0.088 thanks to the pairing
    # (the 3-point spread of the errors themselves cancels out).
    widths = result["ci_high_per_horizon"] - result["ci_low_per_horizon"]
    assert ((widths > 0.06) & (widths < 0.12)).all()
    np.testing.assert_allclose(
        result["difference_per_horizon"], (errors_a - errors_b).mean(axis=0), atol=1e-12
    )


def test_bootstrap_matches_naive_resampling():
    rng = np.random.default_rng(11)
    a = np.abs(rng.normal(size=(40, 6)))
    b = np.abs(rng.normal(size=(40, 6)))
    a[:5, 3] = b[:5, 3] = np.nan
    samples, seed = 300, 5
    result = paired_bootstrap_difference(a, b, samples=samples, seed=seed)

    rows = np.random.default_rng(seed).integers(0, 40, size=(samples, 40))
    boot = np.array([np.nanmean(a[r] - b[r], axis=0) for r in rows])
    np.testing.assert_allclose(
        result["ci_low_per_horizon"], np.percentile(boot, 2.5, axis=0), atol=1e-12
    )
    np.testing.assert_allclose(
        result["ci_high"], np.percentile(boot.mean(axis=1), 97.5), atol=1e-12
    )
    again = paired_bootstrap_difference(a, b, samples=samples, seed=seed)
    assert again["ci_low"] == result["ci_low"]


def test_bootstrap_rejects_mismatched_nan():
    a = np.ones((3, 6))
    b = np.ones((3, 6))
    a[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN on the same"):
        paired_bootstrap_difference(a, b)


def make_forecasts():
    rng = np.random.default_rng(3)
    actual = rng.normal(scale=6.0, size=(120, 6))
    actual[:4, 5] = np.nan
    model = actual + rng.normal(scale=2.0, size=actual.shape)
    persistence = actual + rng.normal(scale=3.0, size=actual.shape)
    analog = actual + rng.normal(scale=2.5, size=actual.shape)
    return actual, model, persistence, analog


def test_summarize_reports_model_beside_persistence():
    actual, model, persistence, analog = make_forecasts()
    summary = summarize(actual, model, persistence, {"analog": analog}, samples=300)
    json.dumps(summary)  # results must be writable as JSON
    assert summary["forecasters"] == ["model", "persistence", "analog"]
    assert summary["n_games"] == 120
    assert summary["n_games_per_horizon"] == [120] * 5 + [116]
    assert summary["minutes"] == [18, 19, 20, 21, 22, 23]
    np.testing.assert_allclose(summary["mae"]["model"], mae_per_horizon(model, actual))
    np.testing.assert_allclose(
        summary["mae_average"]["persistence"], mae_per_horizon(persistence, actual).mean()
    )
    cmp = summary["model_minus_persistence"]
    np.testing.assert_allclose(
        cmp["difference"],
        mae_per_horizon(model, actual) - mae_per_horizon(persistence, actual),
        atol=1e-12,
    )
    assert cmp["average_ci_low"] <= cmp["average"] <= cmp["average_ci_high"]


def test_summarize_requires_persistence():
    actual, model, _, _ = make_forecasts()
    with pytest.raises(ValueError, match="persistence"):
        summarize(actual, model, None)
    with pytest.raises(TypeError):
        summarize(actual, model)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="used twice"):
        summarize(actual, model, model, {"persistence": model})


def test_summary_markdown_table():
    actual, model, persistence, analog = make_forecasts()
    summary = summarize(actual, model, persistence, {"analog": analog}, samples=200)
    text = summary_markdown(summary)
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 6 + 1
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header == [
        "minute",
        "horizon",
        "model",
        "persistence",
        "analog",
        "model - persistence",
        "95% CI",
    ]
    minutes = [row.strip("|").split("|")[0].strip() for row in table[2:]]
    assert minutes == ["18", "19", "20", "21", "22", "23", "average"]
    assert f"{summary['mae_average']['persistence']:.3f}" in table[-1]
    assert "120 games" in text

    del summary["mae"]["persistence"]
    with pytest.raises(ValueError, match="persistence"):
        summary_markdown(summary)
