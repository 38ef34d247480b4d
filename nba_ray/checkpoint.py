"""Self-describing checkpoints: weights plus everything scoring needs to rebuild the model.

A checkpoint folder contains `model.pt` (the unwrapped state dict), `metadata.json` (model
config, normalization statistics, resolved job config, seed, epoch, best validation MAE, data
fingerprint, package versions) and `train_state.pt` (optimizer and early-stopping state, used
only to resume training).
"""

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import torch

from nba_ray.config import ModelConfig, config_from_dict
from nba_ray.model import LSTMForecaster
from nba_ray.normalization import Normalization

logger = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
METADATA_FILE = "metadata.json"
TRAIN_STATE_FILE = "train_state.pt"


class CheckpointError(ValueError):
    """A checkpoint folder is missing, unreadable or incomplete."""


@dataclasses.dataclass
class LoadedCheckpoint:
    """A model ready for inference, with the metadata it was saved with."""

    model: LSTMForecaster
    normalization: Normalization
    metadata: dict[str, Any]
    path: Path

    @property
    def checkpoint_id(self) -> str:
        """Return a stable id for the checkpoint: run name, epoch and folder name."""
        run = self.metadata.get("job_config", {}).get("run", {}).get("name", "run")
        return f"{run}/epoch-{self.metadata.get('epoch')}/{self.path.name}"


def save_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    metadata: dict[str, Any],
    train_state: dict[str, Any] | None = None,
) -> None:
    """Write weights, metadata and optional resume state into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # DDP wraps the model; the saved weights must load into a plain LSTMForecaster.
    plain = model.module if hasattr(model, "module") else model
    state = {key: value.detach().cpu() for key, value in plain.state_dict().items()}
    torch.save(state, folder / MODEL_FILE)
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    if train_state is not None:
        torch.save(train_state, folder / TRAIN_STATE_FILE)


def read_metadata(folder: Path) -> dict[str, Any]:
    """Read and check `metadata.json` of a checkpoint folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(
            f"checkpoint folder not found: {folder}; pass the folder named in the run's "
            "best_checkpoint.json"
        )
    path = folder / METADATA_FILE
    try:
        metadata = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise CheckpointError(f"{path} is missing; this is not an nba-ray checkpoint") from error
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"{path} is not valid JSON ({error}); retrain or restore it"
        ) from error
    for key in ("model_config", "normalization", "epoch"):
        if key not in metadata:
            raise CheckpointError(f"{path} has no {key!r} entry; the checkpoint is incomplete")
    return metadata


def load_checkpoint(folder: Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Rebuild the model in eval mode and its normalization from a checkpoint folder."""
    folder = Path(folder)
    metadata = read_metadata(folder)
    try:
        normalization = Normalization.from_dict(metadata["normalization"])
    except ValueError as error:
        raise CheckpointError(f"{folder / METADATA_FILE}: {error}") from error
    model_config = config_from_dict(ModelConfig, metadata["model_config"], str(folder))
    model = LSTMForecaster(model_config)
    try:
        state = torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except FileNotFoundError as error:
        raise CheckpointError(f"{folder / MODEL_FILE} is missing; retrain the model") from error
    except (RuntimeError, OSError, ValueError) as error:
        raise CheckpointError(f"{folder / MODEL_FILE} cannot be loaded: {error}") from error
    model.to(device).eval()
    return LoadedCheckpoint(
        model=model, normalization=normalization, metadata=metadata, path=folder
    )


def load_train_state(folder: Path) -> dict[str, Any]:
    """Load the optimizer and early-stopping state saved for resuming."""
    return torch.load(Path(folder) / TRAIN_STATE_FILE, map_location="cpu", weights_only=False)
