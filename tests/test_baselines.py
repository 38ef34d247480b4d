import numpy as np
import pytest

from nba_ray.baselines import (
    AnalogForecaster,
    ensemble_forecast,
    fit_ensemble_weights,
    persistence_forecast,
)

# Five training games whose normalized patterns are constant rows at these levels, so the
# Euclidean distance to a constant query row q is sqrt(18) * |level - q| and neighbours are
# obvious by eye.
LEVELS = np.array([0.0, 1.0, 2.0, 10.0, 20.0])
OUTCOMES = np.array(
    [
        [1.0, 10.0, -3.0, 0.0, 7.0, 2.0],
        [4.0, 20.0, -1.0, 0.0, 5.0, 9.0],
        [2.0, 30.0, -2.0, 9.0, 6.0, 1.0],
        [100.0] * 6,
        [-100.0] * 6,
    ]
)
# Raw minute-17 differentials of the training games (for the delta variant).
TRAIN_LAST = np.array([0.0, 1.0, 2.0, 10.0, 20.0])


def constant_patterns(levels):
    return np.repeat(np.asarray(levels, dtype=float)[:, None], 18, axis=1)


def test_persistence_repeats_minute_17():
    pattern = np.arange(36, dtype=float).reshape(2, 18)
    np.testing.assert_array_equal(persistence_forecast(pattern), np.array([[17.0] * 6, [35.0] * 6]))


def test_persistence_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"\[n, 18\]"):
        persistence_forecast(np.zeros((3, 17)))


def test_analog_level_median_by_hand():
    model = AnalogForecaster(k=3).fit(constant_patterns(LEVELS), OUTCOMES, TRAIN_LAST)
    # Query 0.4: distances 0.4, 0.6, 1.6, 9.6, 19.6 -> games 0, 1, 2.
    # Per-horizon medians of (1,4,2), (10,20,30), (-3,-1,-2), (0,0,9), (7,5,6), (2,9,1).
    # Query 16: distances 4 (game 4), 6 (game 3), 14 (game 2) -> games 2, 3, 4; medians of
    # (x, 100, -100) are game 2's outcome x.
    forecast = model.predict(constant_patterns([0.4, 16.0]))
    expected = np.array(
        [
            [2.0, 20.0, -2.0, 0.0, 6.0, 2.0],
            [2.0, 30.0, -2.0, 9.0, 6.0, 1.0],
        ]
    )
    np.testing.assert_array_equal(forecast, expected)
    np.testing.assert_array_equal(
        model.neighbours(constant_patterns([0.4, 16.0])), [[0, 1, 2], [4, 3, 2]]
    )


def test_analog_delta_median_by_hand():
    model = AnalogForecaster(k=3, mode="delta").fit(constant_patterns(LEVELS), OUTCOMES, TRAIN_LAST)
    # Neighbours of query 0.4 are games 0, 1, 2; their outcome - minute 17 value:
    #   game 0: [1, 10, -3,  0, 7,  2]
    #   game 1: [3, 19, -2, -1, 4,  8]
    #   game 2: [0, 28, -4,  7, 4, -1]
    # medians: [1, 19, -3, 0, 4, 2]; plus the query's own minute-17 value 5.
    forecast = model.predict(constant_patterns([0.4]), np.array([5.0]))
    np.testing.assert_array_equal(forecast, [[6.0, 24.0, 2.0, 5.0, 9.0, 7.0]])


def test_analog_delta_needs_last_values():
    with pytest.raises(ValueError, match="train_last"):
        AnalogForecaster(k=3, mode="delta").fit(constant_patterns(LEVELS), OUTCOMES)
    model = AnalogForecaster(k=3, mode="delta").fit(constant_patterns(LEVELS), OUTCOMES, TRAIN_LAST)
    with pytest.raises(ValueError, match="query_last"):
        model.predict(constant_patterns([0.4]))


def test_analog_k_larger_than_training_set_raises():
    with pytest.raises(ValueError, match=r"k=6 .* only 5 training games"):
        AnalogForecaster(k=6).fit(constant_patterns(LEVELS), OUTCOMES, TRAIN_LAST)


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_analog_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        AnalogForecaster(k=k)


def test_analog_k_equal_to_training_set_uses_all_games():
    model = AnalogForecaster(k=5).fit(constant_patterns(LEVELS), OUTCOMES)
    forecast = model.predict(constant_patterns([3.0]))
    np.testing.assert_array_equal(forecast[0], np.median(OUTCOMES, axis=0))


def test_analog_predict_before_fit_raises():
    with pytest.raises(RuntimeError, match="fit"):
        AnalogForecaster(k=1).predict(constant_patterns([0.0]))


@pytest.mark.parametrize("mode", ["level", "delta"])
def test_analog_chunked_matches_brute_force(mode):
    rng = np.random.default_rng(3)
    train = rng.normal(size=(300, 18))
    outcomes = rng.normal(size=(300, 6))
    last = rng.normal(size=300)
    queries = rng.normal(size=(37, 18))
    query_last = rng.normal(size=37)
    k = 11
    forecast = (
        AnalogForecaster(k=k, mode=mode, chunk_size=8)
        .fit(train, outcomes, last)
        .predict(queries, query_last)
    )

    distances = ((queries[:, None, :] - train[None, :, :]) ** 2).sum(axis=2)
    nearest = np.argsort(distances, axis=1)[:, :k]
    if mode == "level":
        expected = np.median(outcomes[nearest], axis=1)
    else:
        expected = query_last[:, None] + np.median((outcomes - last[:, None])[nearest], axis=1)
    np.testing.assert_allclose(forecast, expected, rtol=0, atol=1e-12)


def test_analog_skips_nan_outcomes_in_median():
    outcomes = OUTCOMES.copy()
    outcomes[1, 0] = np.nan
    model = AnalogForecaster(k=3).fit(constant_patterns(LEVELS), outcomes)
    forecast = model.predict(constant_patterns([0.4]))
    # Horizon 1 neighbours now (1, NaN, 2) -> median of (1, 2).
    assert forecast[0, 0] == 1.5
    np.testing.assert_array_equal(forecast[0, 1:], [20.0, -2.0, 0.0, 6.0, 2.0])


def test_ensemble_weights_recover_perfect_forecaster():
    rng = np.random.default_rng(0)
    actual = rng.normal(scale=5.0, size=(400, 6))
    noisy = actual + rng.normal(scale=2.0, size=actual.shape)
    np.testing.assert_array_equal(fit_ensemble_weights(actual, noisy, actual), np.ones(6))
    np.testing.assert_array_equal(fit_ensemble_weights(noisy, actual, actual), np.zeros(6))


def test_ensemble_weights_ignore_nan_actuals_and_lie_on_grid():
    rng = np.random.default_rng(1)
    actual = rng.normal(size=(200, 6))
    model = actual + rng.normal(scale=1.0, size=actual.shape)
    analog = actual + rng.normal(scale=1.0, size=actual.shape)
    actual[:20, 2] = np.nan
    weights = fit_ensemble_weights(model, analog, actual)
    assert weights.shape == (6,)
    assert ((weights >= 0) & (weights <= 1)).all()
    np.testing.assert_allclose(weights * 100, np.round(weights * 100), atol=1e-9)
    # Equally noisy independent forecasts: the blend should use both.
    assert ((weights > 0.2) & (weights < 0.8)).all()


def test_ensemble_forecast_blends_per_horizon():
    model = np.full((2, 6), 10.0)
    analog = np.zeros((2, 6))
    weights = np.array([0.0, 0.2, 0.5, 0.7, 0.9, 1.0])
    np.testing.assert_allclose(ensemble_forecast(model, analog, weights), [10 * weights] * 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ensemble_forecast(model, analog, np.full(6, 1.5))
