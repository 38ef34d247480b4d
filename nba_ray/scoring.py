"""Batch inference with Ray Data: a predictor class that maps game batches to forecasts.

The predictor loads the checkpoint once per actor, runs under `torch.inference_mode`, and adds
the persistence forecast, the analog and ensemble forecasts and conformal bounds when the
driver fitted them, so every model forecast leaves the job beside its baselines.
"""

import dataclasses
import itertools
import logging
import os
from pathlib import Path

import numpy as np
import ray.data
import torch

from nba_ray.baselines import AnalogForecaster, ensemble_forecast, persistence_forecast
from nba_ray.checkpoint import LoadedCheckpoint, load_checkpoint
from nba_ray.data import ID_COLUMNS, build_model_inputs, forecast_from_target
from nba_ray.normalization import Normalization

logger = logging.getLogger(__name__)

# Checkpoint loads in this process; diagnostics output lets tests prove one load per actor.
_LOADS_IN_PROCESS = itertools.count(1)


@dataclasses.dataclass
class Companions:
    """Forecasts fitted on the splits that travel with the model into every actor."""

    analog: AnalogForecaster | None = None
    analog_delta: AnalogForecaster | None = None
    # Per-horizon weight of the model in the model / analog blend, fitted on validation.
    ensemble_weights: np.ndarray | None = None
    # Conformal half-widths per level, fitted on the calibration split.
    model_intervals: dict[float, np.ndarray] = dataclasses.field(default_factory=dict)
    ensemble_intervals: dict[float, np.ndarray] = dataclasses.field(default_factory=dict)


def model_forecast(
    model: torch.nn.Module,
    normalization: Normalization,
    batch: dict[str, np.ndarray],
    device: torch.device,
) -> np.ndarray:
    """Forecast minutes 18-23 in points for a numpy batch with `pattern` (and context) columns."""
    inputs = build_model_inputs(batch, normalization, model.config)
    with torch.inference_mode():
        x = torch.from_numpy(inputs["x"]).to(device)
        context = torch.from_numpy(inputs["context"]).to(device)
        normalized = model(x, context).cpu().numpy()
    predicted = normalization.target.inverse(normalized)
    return forecast_from_target(batch["pattern"], predicted, model.config.target)


def companion_forecasts(
    companions: Companions,
    normalization: Normalization,
    pattern: np.ndarray,
    forecast: np.ndarray,
) -> dict[str, np.ndarray]:
    """Return the analog, analog-delta and ensemble forecasts that `companions` can produce."""
    out: dict[str, np.ndarray] = {}
    normalized = normalization.pattern.transform(pattern)
    if companions.analog is not None:
        out["analog"] = companions.analog.predict(normalized).astype(np.float32)
    if companions.analog_delta is not None:
        out["analog_delta"] = companions.analog_delta.predict(normalized, pattern[:, -1]).astype(
            np.float32
        )
    if companions.ensemble_weights is not None and "analog" in out:
        out["ensemble"] = ensemble_forecast(
            forecast, out["analog"], companions.ensemble_weights
        ).astype(np.float32)
    return out


class Predictor:
    """Ray Data map_batches callable: one checkpoint load per actor, then many batches."""

    def __init__(
        self, checkpoint_dir: str, use_gpu: bool, companions: Companions, diagnostics: bool = False
    ):
        if use_gpu and not torch.cuda.is_available():
            raise RuntimeError(
                "score.num_gpus_per_actor > 0 but this actor sees no CUDA device; run on GPU "
                "nodes or set num_gpus_per_actor: 0"
            )
        self.device = torch.device("cuda" if use_gpu else "cpu")
        self.loaded: LoadedCheckpoint = load_checkpoint(Path(checkpoint_dir), self.device)
        self.load_number = next(_LOADS_IN_PROCESS)
        self.companions = companions
        self.diagnostics = diagnostics
        logger.info("predictor %d loaded %s", os.getpid(), self.loaded.checkpoint_id)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pattern = batch["pattern"].astype(np.float32)
        actual = batch["outcome"].astype(np.float32)
        forecast = model_forecast(self.loaded.model, self.loaded.normalization, batch, self.device)
        persistence = persistence_forecast(pattern).astype(np.float32)
        out = {name: batch[name] for name in ID_COLUMNS}
        out.update(
            last_observed=pattern[:, -1],
            forecast=forecast.astype(np.float32),
            actual=actual,
            persistence=persistence,
            # NaN where the minute is not observed yet, so those games carry no error.
            abs_error=np.abs(forecast - actual).astype(np.float32),
            persistence_abs_error=np.abs(persistence - actual).astype(np.float32),
        )
        companions = companion_forecasts(
            self.companions, self.loaded.normalization, pattern, forecast
        )
        out.update(companions)
        out.update(_bounds(forecast, self.companions.model_intervals, ""))
        if "ensemble" in companions:
            out.update(
                _bounds(companions["ensemble"], self.companions.ensemble_intervals, "ensemble_")
            )
        out["checkpoint_id"] = np.full(len(pattern), self.loaded.checkpoint_id)
        if self.diagnostics:
            out["predictor_pid"] = np.full(len(pattern), os.getpid())
            out["predictor_load_number"] = np.full(len(pattern), self.load_number)
        return out


def _bounds(forecast: np.ndarray, intervals: dict[float, np.ndarray], prefix: str) -> dict:
    bounds = {}
    for level, half_width in intervals.items():
        tag = f"{round(level * 100)}"
        bounds[f"{prefix}lower_{tag}"] = (forecast - half_width).astype(np.float32)
        bounds[f"{prefix}upper_{tag}"] = (forecast + half_width).astype(np.float32)
    return bounds


def score_dataset(
    dataset: ray.data.Dataset,
    checkpoint_dir: Path,
    companions: Companions,
    batch_size: int,
    concurrency: int,
    num_gpus: float,
    num_cpus: float,
    diagnostics: bool = False,
) -> ray.data.Dataset:
    """Return `dataset` mapped through a pool of `concurrency` predictor actors."""
    return dataset.map_batches(
        Predictor,
        fn_constructor_kwargs={
            "checkpoint_dir": str(checkpoint_dir),
            "use_gpu": num_gpus > 0,
            "companions": companions,
            "diagnostics": diagnostics,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_gpus=num_gpus,
        num_cpus=num_cpus,
    )


def predict_arrays(loaded: LoadedCheckpoint, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Forecast in the driver with a plain model call, for small splits and for checks."""
    return model_forecast(loaded.model, loaded.normalization, arrays, torch.device("cpu"))
