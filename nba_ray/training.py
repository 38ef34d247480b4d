"""The per-worker training loop that Ray Train's TorchTrainer runs on every worker.

Every worker trains on its shard of the training split and evaluates the whole validation
split, so all ranks compute the same validation MAE and stop at the same epoch. If they
stopped at different epochs, their `ray.train.report` counts would diverge and the run would
hang.
"""

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from torch import nn

from nba_ray.checkpoint import load_train_state, save_checkpoint
from nba_ray.config import TrainJobConfig, config_from_dict
from nba_ray.data import collect, forecast_from_target
from nba_ray.model import LSTMForecaster
from nba_ray.normalization import Normalization

logger = logging.getLogger(__name__)

SCORE_METRIC = "val/mae"
INPUT_COLUMNS = ["x", "context", "y", "pattern", "outcome"]


def seed_everything(seed: int) -> None:
    """Seed torch and numpy for this process."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def seed_epoch(seed: int, epoch: int, rank: int) -> torch.Generator:
    """Seed torch's global generator (dropout) for one epoch and return the shuffle generator."""
    epoch_seed = seed * 1_000_003 + epoch * 101 + rank
    torch.manual_seed(epoch_seed)
    return torch.Generator().manual_seed(epoch_seed)


def load_tensors(dataset, device: torch.device) -> dict[str, torch.Tensor]:
    """Materialize a (small) dataset shard as tensors on `device`.

    The splits hold a few thousand games, so each worker keeps its shard in memory and
    reshuffles it locally every epoch instead of re-reading Parquet through Ray Data.
    """
    arrays = collect(dataset, INPUT_COLUMNS)
    return {
        name: torch.from_numpy(np.ascontiguousarray(a)).to(device) for name, a in arrays.items()
    }


def loss_function(name: str) -> nn.Module:
    """Return the training loss on normalized targets."""
    return nn.L1Loss() if name == "l1" else nn.MSELoss()


def train_epoch(
    model: nn.Module,
    tensors: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    batch_size: int,
    num_batches: int,
    generator: torch.Generator,
    grad_clip_norm: float,
) -> float:
    """Run one epoch over a seeded permutation of the shard; return the mean batch loss."""
    model.train()
    order = torch.randperm(len(tensors["x"]), generator=generator).to(tensors["x"].device)
    total = 0.0
    for index in range(num_batches):
        rows = order[index * batch_size : (index + 1) * batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(tensors["x"][rows], tensors["context"][rows]), tensors["y"][rows])
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip_norm)
        optimizer.step()
        total += loss.item()
    return total / max(num_batches, 1)


@torch.inference_mode()
def predict_points(
    model: nn.Module, tensors: dict[str, torch.Tensor], normalization: Normalization, target: str
) -> np.ndarray:
    """Forecast minutes 18-23 in points for every game in `tensors`."""
    model.eval()
    normalized = model(tensors["x"], tensors["context"]).cpu().numpy()
    pattern = tensors["pattern"].cpu().numpy()
    return forecast_from_target(pattern, normalization.target.inverse(normalized), target)


def mae_per_horizon(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Mean absolute error per forecast minute, in points."""
    return np.abs(predicted - actual).mean(axis=0)


# The collectives below build their tensors on the worker's device, because with use_gpu the
# process group uses NCCL, which rejects CPU tensors.
def _mean_across_workers(value: float, device: torch.device) -> float:
    if not (dist.is_available() and dist.is_initialized()):
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / dist.get_world_size()


def _min_across_workers(value: int, device: torch.device) -> int:
    if not (dist.is_available() and dist.is_initialized()):
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor.item())


def _broadcast_from_rank0(values: np.ndarray, device: torch.device) -> np.ndarray:
    """Make every rank use rank 0's numbers, so early-stopping decisions agree bit for bit."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return tensor.cpu().numpy()


def check_worker_device(device: torch.device, use_gpu: bool) -> None:
    """Raise if scaling.use_gpu is true but this worker has no usable CUDA device.

    Ray hands a GPU worker a `cuda` device even when the installed torch is a CPU-only build,
    so without this check the first tensor move fails with a less direct error.
    """
    if not use_gpu:
        return
    if device.type != "cuda" or not torch.cuda.is_available():
        raise RuntimeError(
            f"scaling.use_gpu is true but this worker's device is {device} and "
            f"torch.cuda.is_available() is {torch.cuda.is_available()} (torch "
            f"{torch.__version__}); install a CUDA build of torch on the GPU nodes or set "
            "scaling.use_gpu: false"
        )


def train_loop_per_worker(loop_config: dict[str, Any]) -> list[dict[str, Any]]:
    """Train with early stopping, reporting metrics and a checkpoint every epoch.

    Returns the per-epoch metrics history (Ray hands rank 0's value to the driver).
    """
    # Ray routes worker logs to the driver already; raising only this package's level keeps
    # Ray Train's per-report INFO lines out of the job log.
    logging.getLogger("nba_ray").setLevel(logging.INFO)
    job = config_from_dict(TrainJobConfig, loop_config["job"])
    normalization = Normalization.from_dict(loop_config["normalization"])
    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    check_worker_device(device, job.scaling.use_gpu)
    seed_everything(job.train.seed)

    train = load_tensors(ray.train.get_dataset_shard("train"), device)
    val = load_tensors(ray.train.get_dataset_shard("val"), device)
    batch_size = job.train.batch_size // world_size
    # DDP needs the same number of steps on every rank, so all use the smallest shard's count.
    num_batches = _min_across_workers(len(train["x"]) // batch_size, device)
    val_outcome = val["outcome"].cpu().numpy()
    persistence_mae = float(np.abs(val["pattern"][:, -1:].cpu().numpy() - val_outcome).mean())

    model = ray.train.torch.prepare_model(LSTMForecaster(job.model))
    optimizer = torch.optim.Adam(
        model.parameters(), lr=job.train.learning_rate, weight_decay=job.train.weight_decay
    )
    criterion = loss_function(job.train.loss)
    state = {
        "epoch": 0,
        "best_mae": float("inf"),
        "best_epoch": 0,
        "bad_epochs": 0,
        "stopped": False,
        "history": [],
    }

    resume = ray.train.get_checkpoint()
    if resume is not None:
        with resume.as_directory() as folder:
            saved = load_train_state(Path(folder))
        unwrap(model).load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["loop"]
        # Early stopping is judged again with the current patience, so raising
        # train.patience_epochs lets a run that stopped early go on.
        state["stopped"] = state["bad_epochs"] >= job.train.patience_epochs
        if rank == 0:
            logger.info("resumed from checkpoint after epoch %d", state["epoch"])
            if state["stopped"] or state["epoch"] >= job.train.max_epochs:
                logger.info(
                    "run already finished: %d epoch(s) without a better val MAE (patience %d), "
                    "%d of max_epochs %d; raise train.patience_epochs or train.max_epochs to "
                    "train on",
                    state["bad_epochs"],
                    job.train.patience_epochs,
                    state["epoch"],
                    job.train.max_epochs,
                )

    while not state["stopped"] and state["epoch"] < job.train.max_epochs:
        epoch = state["epoch"] + 1
        started = time.perf_counter()

        # train: the shuffle and the dropout masks depend only on seed, epoch and rank, so a run
        # resumed from a checkpoint repeats exactly what an uninterrupted run would have done
        generator = seed_epoch(job.train.seed, epoch, rank)
        train_loss = train_epoch(
            model,
            train,
            optimizer,
            criterion,
            batch_size,
            num_batches,
            generator,
            job.train.grad_clip_norm,
        )
        train_loss = _mean_across_workers(train_loss, device)

        # validate on the whole split, then agree on rank 0's numbers
        predicted = predict_points(unwrap(model), val, normalization, job.model.target)
        horizon_mae = _broadcast_from_rank0(mae_per_horizon(predicted, val_outcome), device)
        val_mae = float(horizon_mae.mean())

        # early stopping
        improved = val_mae < state["best_mae"]
        if improved:
            state.update(best_mae=val_mae, best_epoch=epoch, bad_epochs=0)
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        state["stopped"] = state["bad_epochs"] >= job.train.patience_epochs

        metrics = {
            "epoch": epoch,
            "train/loss": train_loss,
            # Games (or mirrored copies) the workers stepped through together this epoch.
            "train/samples": num_batches * batch_size * world_size,
            SCORE_METRIC: val_mae,
            "val/mae_best": state["best_mae"],
            "val/persistence_mae": persistence_mae,
            "lr": optimizer.param_groups[0]["lr"],
            "epoch_seconds": time.perf_counter() - started,
            **{f"val/mae_minute_{18 + h}": float(v) for h, v in enumerate(horizon_mae)},
        }
        state["history"].append(metrics)
        if rank == 0:
            logger.info(
                "epoch %3d  train/loss %.4f  val/mae %.4f  val/mae_best %.4f  "
                "val/persistence_mae %.4f  lr %.1e  %.2f s%s",
                epoch,
                train_loss,
                val_mae,
                state["best_mae"],
                persistence_mae,
                metrics["lr"],
                metrics["epoch_seconds"],
                "  *" if improved else "",
            )
        _report(metrics, model, optimizer, state, loop_config, rank)
    return state["history"]


def unwrap(model: nn.Module) -> nn.Module:
    """Return the plain module inside a DistributedDataParallel wrapper."""
    return model.module if hasattr(model, "module") else model


def _report(metrics, model, optimizer, state, loop_config, rank) -> None:
    # Every epoch reports a checkpoint so a restarted worker group loses no progress. The
    # CheckpointConfig keeps the best one by val/mae, and Ray also keeps the latest.
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if rank == 0:
            metadata = {
                **loop_config["metadata"],
                "epoch": metrics["epoch"],
                "val_mae": metrics[SCORE_METRIC],
                "best_val_mae_so_far": state["best_mae"],
                "is_best_so_far": state["best_epoch"] == metrics["epoch"],
            }
            train_state = {
                "model": unwrap(model).state_dict(),
                "optimizer": optimizer.state_dict(),
                "loop": state,
            }
            save_checkpoint(Path(folder), model, metadata, train_state)
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report(
            metrics, checkpoint=checkpoint, checkpoint_dir_name=f"epoch-{metrics['epoch']:03d}"
        )
