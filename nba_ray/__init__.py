"""Train and serve an NBA score-differential forecaster on Ray."""

__version__ = "0.1.0"

# Minutes of the per-minute differential series the model reads and forecasts.
PATTERN_MINUTES = 18
OUTCOME_MINUTES = 6
REGULATION_MINUTES = 48
