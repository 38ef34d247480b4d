"""Per-position z-score normalization fitted on the training split only.

The statistics are plain lists so they travel inside checkpoints as JSON and scoring needs
nothing else to rebuild the exact transform.
"""

import dataclasses

import numpy as np

# Added to every standard deviation so a constant position never divides by zero.
STD_EPSILON = 1e-10


@dataclasses.dataclass
class Standardizer:
    """Mean and standard deviation per position of one array column."""

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, values: np.ndarray) -> "Standardizer":
        """Fit on `values` of shape [games, positions], ignoring NaN entries."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] == 0:
            raise ValueError(f"cannot fit normalization on an array of shape {values.shape}")
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0) + STD_EPSILON
        return cls(mean=mean.tolist(), std=std.tolist())

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Return (values - mean) / std as float32."""
        mean, std = self._arrays(values)
        return ((values - mean) / std).astype(np.float32)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Return values * std + mean as float32, undoing `transform`."""
        mean, std = self._arrays(values)
        return (values * std + mean).astype(np.float32)

    def _arrays(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if values.shape[-1] != len(self.mean):
            raise ValueError(
                f"normalization was fitted on {len(self.mean)} positions, "
                f"got an array with {values.shape[-1]}"
            )
        return np.asarray(self.mean), np.asarray(self.std)


@dataclasses.dataclass
class Normalization:
    """The fitted statistics for every model input and for the target."""

    pattern: Standardizer
    target: Standardizer
    # Absent (None) when the model uses no context features.
    context: Standardizer | None = None

    def to_dict(self) -> dict:
        """Return the statistics as JSON-compatible data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Normalization":
        """Rebuild from `to_dict` output; raise ValueError if a part is missing."""
        try:
            context = data.get("context")
            return cls(
                pattern=Standardizer(**data["pattern"]),
                target=Standardizer(**data["target"]),
                context=Standardizer(**context) if context else None,
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"normalization statistics are incomplete: missing {error}") from error
