"""The LSTM forecaster's module structure and forward pass under the shipped configs."""

import torch
from conftest import REPO
from torch import nn

from nba_ray import OUTCOME_MINUTES, PATTERN_MINUTES
from nba_ray.config import ModelConfig, TrainJobConfig, load_config
from nba_ray.features import CONTEXT_FEATURES
from nba_ray.model import LSTMForecaster


def test_default_config_builds_plain_lstm():
    for config in (
        ModelConfig(),
        load_config(REPO / "configs" / "lstm.yaml", TrainJobConfig).model,
    ):
        model = LSTMForecaster(config)
        assert [type(module) for module in model.modules()] == [
            LSTMForecaster,
            nn.LSTM,
            nn.Linear,
        ]
        lstm = model.lstm
        assert lstm.input_size == 1
        assert lstm.hidden_size == 64
        assert lstm.num_layers == 2
        assert lstm.dropout == 0.1
        assert lstm.batch_first
        assert model.head.in_features == 64
        assert model.head.out_features == OUTCOME_MINUTES


def test_lstm_plus_forward_uses_context():
    job = load_config(REPO / "configs" / "lstm_plus.yaml", TrainJobConfig)
    features = job.model.context_features
    assert features
    assert set(features) <= set(CONTEXT_FEATURES)
    # Constant 0 in the regular-season splits, so its z-score would blow up on a playoff game.
    assert "is_playoff" not in features
    assert job.model.target == "delta"
    assert job.train.loss == "l1"
    # One Linear layer over the last hidden state, the context features and the side input.
    assert job.model.mirror_sides
    assert model_head_inputs(job.model) == 64 + len(features) + 1

    torch.manual_seed(0)
    model = LSTMForecaster(job.model).eval()
    pattern = torch.randn(4, PATTERN_MINUTES)
    context = torch.randn(4, len(features) + 1)
    with torch.no_grad():
        out = model(pattern, context)
        shifted = model(pattern, context + 1.0)
    assert out.shape == (4, OUTCOME_MINUTES)
    assert torch.isfinite(out).all()
    # Same patterns, other context: the forecast must move, so the head reads the context.
    assert not torch.allclose(out, shifted)


def model_head_inputs(config: ModelConfig) -> int:
    head = LSTMForecaster(config).head
    first = head[0] if isinstance(head, nn.Sequential) else head
    return first.in_features
