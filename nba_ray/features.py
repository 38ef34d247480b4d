"""Leak-free pre-game context features (placeholder until the feature module lands)."""

import pyarrow as pa


def add_context_features(games: pa.Table) -> pa.Table:
    """Return `games` unchanged; the context features module replaces this."""
    return games
