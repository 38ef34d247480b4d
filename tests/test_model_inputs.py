"""Model inputs built from split batches, with and without home/away mirroring."""

import numpy as np
import pytest

from nba_ray import OUTCOME_MINUTES, PATTERN_MINUTES
from nba_ray.config import ConfigError, ModelConfig
from nba_ray.data import build_model_inputs, mirror_plan, training_inputs
from nba_ray.model import LSTMForecaster
from nba_ray.normalization import Normalization, Standardizer

FEATURES = ["elo_diff", "rest_days_home", "rest_days_away", "pace_17"]


def batch(rows: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    pattern = np.cumsum(rng.integers(-3, 4, size=(rows, PATTERN_MINUTES)), axis=1)
    outcome = pattern[:, -1:] + np.cumsum(rng.integers(-3, 4, size=(rows, OUTCOME_MINUTES)), 1)
    return {
        "game_id": np.array([f"g{i}" for i in range(rows)]),
        "pattern": pattern.astype(np.float32),
        "outcome": outcome.astype(np.float32),
        "elo_diff": rng.normal(0, 5, rows).astype(np.float32),
        "rest_days_home": rng.integers(1, 4, rows).astype(np.float32),
        "rest_days_away": rng.integers(4, 8, rows).astype(np.float32),
        "pace_17": rng.normal(75, 8, rows).astype(np.float32),
    }


def normalization(values: dict[str, np.ndarray]) -> Normalization:
    context = np.stack([values[name] for name in FEATURES], axis=1)
    return Normalization(
        pattern=Standardizer.fit(values["pattern"]),
        target=Standardizer.fit(values["outcome"] - values["pattern"][:, -1:]),
        context=Standardizer.fit(context),
    )


def config(mirror: bool) -> ModelConfig:
    return ModelConfig(target="delta", context_features=FEATURES, mirror_sides=mirror)


def test_mirrored_copy_swaps_sides():
    values = batch()
    stats = normalization(values)
    out = training_inputs(values, stats, config(mirror=True))
    rows = len(values["pattern"])
    assert len(out["x"]) == 2 * rows
    played, swapped = {k: v[:rows] for k, v in out.items()}, {k: v[rows:] for k, v in out.items()}
    np.testing.assert_array_equal(played["pattern"], values["pattern"])
    np.testing.assert_array_equal(swapped["pattern"], -values["pattern"])
    np.testing.assert_array_equal(swapped["outcome"], -values["outcome"])
    np.testing.assert_allclose(
        swapped["y"], stats.target.transform(values["pattern"][:, -1:] - values["outcome"])
    )
    # Last context column is the side: +1 as played, -1 swapped.
    np.testing.assert_array_equal(played["context"][:, -1], np.ones(rows))
    np.testing.assert_array_equal(swapped["context"][:, -1], -np.ones(rows))
    raw_swapped = np.stack(
        [
            -values["elo_diff"],
            values["rest_days_away"],
            values["rest_days_home"],
            values["pace_17"],
        ],
        axis=1,
    )
    np.testing.assert_allclose(swapped["context"][:, :-1], stats.context.transform(raw_swapped))
    np.testing.assert_allclose(
        played["context"][:, :-1],
        stats.context.transform(np.stack([values[name] for name in FEATURES], axis=1)),
    )


def test_unmirrored_training_inputs_match_scoring():
    values = batch(seed=1)
    stats = normalization(values)
    out = training_inputs(values, stats, config(mirror=False))
    scoring = build_model_inputs(values, stats, config(mirror=False))
    assert sorted(out) == ["context", "outcome", "pattern", "x", "y"]
    for name in out:
        np.testing.assert_array_equal(out[name], scoring[name])
    assert out["context"].shape == (5, len(FEATURES))


def test_scoring_feeds_the_played_side():
    values = batch(seed=2)
    stats = normalization(values)
    inputs = build_model_inputs(values, stats, config(mirror=True))
    assert inputs["context"].shape == (5, len(FEATURES) + 1)
    np.testing.assert_array_equal(inputs["context"][:, -1], np.ones(5))
    model = LSTMForecaster(config(mirror=True))
    assert model.head.in_features == 64 + len(FEATURES) + 1


def test_feature_without_mirror_is_rejected():
    with pytest.raises(ConfigError, match="points_at_17 .*MIRRORED_FEATURES"):
        mirror_plan(["elo_diff", "points_at_17"])
    assert mirror_plan(["rest_days_home", "pace_17"]) == [
        ("rest_days_home", "rest_days_away", 1.0),
        ("pace_17", "pace_17", 1.0),
    ]
