"""The LSTM forecaster: an 18-minute differential pattern in, 6 forecast minutes out."""

import torch
from torch import nn

from nba_ray import OUTCOME_MINUTES
from nba_ray.config import ModelConfig


class LSTMForecaster(nn.Module):
    """LSTM over the pattern, then a head on the last time step's hidden state.

    With no context features and `head_hidden_size` 0 the head is one Linear(hidden -> 6).
    Context features, when configured, and the side input of `mirror_sides` models are
    concatenated to the last hidden state first.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(
            input_size=1,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            # PyTorch applies this dropout between stacked layers, never after the last one.
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        head_inputs = config.hidden_size + len(config.context_features) + int(config.mirror_sides)
        if config.head_hidden_size > 0:
            self.head = nn.Sequential(
                nn.Linear(head_inputs, config.head_hidden_size),
                nn.ReLU(),
                nn.Linear(config.head_hidden_size, OUTCOME_MINUTES),
            )
        else:
            self.head = nn.Linear(head_inputs, OUTCOME_MINUTES)

    def forward(self, pattern: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Map normalized patterns [batch, minutes] to normalized targets [batch, 6]."""
        # [batch, minutes] -> [batch, minutes, 1]
        sequence, _ = self.lstm(pattern.unsqueeze(-1))
        # [batch, hidden]
        last = sequence[:, -1, :]
        if context is not None and context.shape[-1] > 0:
            last = torch.cat([last, context], dim=-1)
        return self.head(last)
