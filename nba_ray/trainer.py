"""Driver side of training: data, TorchTrainer setup, and the run folder."""

import csv
import dataclasses
import logging
from pathlib import Path
from typing import Any

import ray
import ray.data
import ray.train
from ray.train import (
    CheckpointConfig,
    DataConfig,
    FailureConfig,
    LoggingConfig,
    RunConfig,
    ScalingConfig,
)
from ray.train.torch import TorchTrainer

from nba_ray import atomic, provenance
from nba_ray.checkpoint import CheckpointError, read_metadata
from nba_ray.config import (
    ConfigError,
    TrainJobConfig,
    changed_keys,
    config_from_dict,
    config_to_dict,
)
from nba_ray.data import (
    check_split,
    fit_normalization,
    mirror_plan,
    read_split,
    split_path,
    with_model_inputs,
)
from nba_ray.splits import read_manifest
from nba_ray.training import SCORE_METRIC, train_loop_per_worker

logger = logging.getLogger(__name__)

BEST_CHECKPOINT_FILE = "best_checkpoint.json"

# Settings a resumed run may change: where its files go, the hardware it runs on, scoring, and
# how long it may keep training. Anything else would silently mix two different runs.
RESUMABLE_SECTIONS = ("run", "scaling", "score", "splits_dir")
RESUMABLE_TRAIN_KEYS = ("max_epochs", "patience_epochs")


@dataclasses.dataclass
class TrainingOutcome:
    """Locations of a finished run's records and best checkpoint, and its scores."""

    run_dir: Path
    best_checkpoint: Path
    best_epoch: int
    best_val_mae: float
    val_persistence_mae: float
    epochs_run: int


def resolve_path(root: Path, path: str) -> str:
    """Resolve a config path against the project root; URIs such as s3:// pass through."""
    if "://" in path:
        return path
    return str((Path(root) / path).resolve())


def check_gpus(job: TrainJobConfig) -> None:
    """Raise if GPUs are requested but the cluster has too few; never fall back to CPU."""
    if not job.scaling.use_gpu:
        return
    per_worker = job.scaling.resources_per_worker.get("GPU", 1)
    needed = per_worker * job.scaling.num_workers
    available = ray.cluster_resources().get("GPU", 0)
    if available < needed:
        raise ConfigError(
            f"scaling.use_gpu is true and {job.scaling.num_workers} worker(s) need {needed} "
            f"GPU(s), but the Ray cluster has {available}; start Ray on GPU nodes or set "
            "use_gpu: false"
        )


def build_trainer(job: TrainJobConfig, root: Path, metadata: dict[str, Any]) -> TorchTrainer:
    """Fit normalization on train, apply it to train and val, and configure TorchTrainer."""
    splits_dir = Path(root) / job.splits_dir
    features = job.model.context_features
    for name in ("train", "val"):
        check_split(split_path(splits_dir, name), features)
    if job.model.mirror_sides:
        mirror_plan(features)
    train = read_split(split_path(splits_dir, "train"), features)
    val = read_split(split_path(splits_dir, "val"), features)
    normalization = fit_normalization(train, job.model)
    # Materialized on the driver because training workers reserve every CPU of a small
    # cluster, which would leave no CPU for streaming read tasks and hang the run. The splits
    # are a few MB, so this costs little.
    # NOTE: a much larger dataset should stream instead, with CPUs left free for Ray Data.
    datasets = {
        "train": with_model_inputs(
            train, normalization, job.model, for_training=True
        ).materialize(),
        "val": with_model_inputs(val, normalization, job.model).materialize(),
    }
    metadata = {**metadata, "normalization": normalization.to_dict()}
    resources = dict(job.scaling.resources_per_worker)
    if not job.scaling.use_gpu:
        resources.pop("GPU", None)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "job": config_to_dict(job),
            "normalization": normalization.to_dict(),
            "metadata": metadata,
        },
        scaling_config=ScalingConfig(
            num_workers=job.scaling.num_workers,
            use_gpu=job.scaling.use_gpu,
            resources_per_worker=resources,
        ),
        run_config=RunConfig(
            name=job.run.name,
            storage_path=resolve_path(root, job.run.storage_path),
            failure_config=FailureConfig(max_failures=job.run.max_failures),
            checkpoint_config=CheckpointConfig(
                num_to_keep=1,
                checkpoint_score_attribute=SCORE_METRIC,
                # Lower MAE is better; Ray's default order "max" would keep the worst.
                checkpoint_score_order="min",
            ),
            # Ray Train logs every report at INFO; the loop logs one line per epoch instead.
            logging_config=LoggingConfig(log_level="WARNING"),
        ),
        datasets=datasets,
        # Only train is sharded; every worker validates on the whole val split.
        dataset_config=DataConfig(
            datasets_to_split=["train"],
            execution_options=ray.data.ExecutionOptions(preserve_order=True),
        ),
    )


def run_training(job: TrainJobConfig, root: Path) -> TrainingOutcome:
    """Train `job` on the cluster Ray is connected to and write the run folder."""
    root = Path(root)
    manifest = read_manifest(root / job.splits_dir)
    check_gpus(job)
    metadata = {
        "model_config": dataclasses.asdict(job.model),
        "job_config": config_to_dict(job),
        "seed": job.train.seed,
        "data_fingerprint": manifest.get("splits_sha256"),
        "timeline_sha256": manifest.get("timeline_sha256"),
        "versions": provenance.package_versions(),
    }
    check_resume(job, Path(resolve_path(root, job.run.storage_path)) / job.run.name, metadata)
    trainer = build_trainer(job, root, metadata)
    logger.info(
        "training %s on %d %s worker(s)",
        job.run.name,
        job.scaling.num_workers,
        "GPU" if job.scaling.use_gpu else "CPU",
    )
    result = trainer.fit()
    best = result.get_best_checkpoint(SCORE_METRIC, "min")
    if best is None:
        raise RuntimeError(f"run {job.run.name} finished without a checkpoint")
    history = result.return_value or []
    return _write_run_records(job, Path(result.path), best, history, metadata)


def check_resume(job: TrainJobConfig, run_dir: Path, metadata: dict[str, Any]) -> None:
    """Raise if `run_dir` contains checkpoints of a run with other settings or other splits.

    Ray Train resumes any run whose folder already has checkpoints, so without this check a
    changed config or re-prepared splits would continue the old weights under the old name.
    """
    latest = latest_checkpoint(run_dir)
    if latest is None:
        return
    try:
        saved = read_metadata(latest)
    except CheckpointError as error:
        raise ConfigError(
            f"run {job.run.name} would resume from {latest}, which cannot be read ({error}); "
            f"delete {run_dir} or pick another run.name"
        ) from error
    changed = changed_keys(
        _weight_settings(_with_defaults(saved.get("job_config", {}))),
        _weight_settings(config_to_dict(job)),
    )
    before, now = saved.get("data_fingerprint"), metadata["data_fingerprint"]
    if before != now:
        changed.append(
            f"splits fingerprint: {before!r} -> {now!r}; the splits in {job.splits_dir} were "
            "prepared again with other contents (their manifest.json lists sizes and dates), "
            "so prepare them with the run's data settings or train under another name"
        )
    if changed:
        raise ConfigError(
            f"{run_dir} contains checkpoints of run {job.run.name} trained with other settings "
            f"({'; '.join(changed)}); training under that name would resume it. Pick another "
            f"run.name (for example --set run.name={job.run.name}-2) or delete {run_dir}"
        )


def latest_checkpoint(run_dir: Path) -> Path | None:
    """Return the newest epoch checkpoint folder in a run folder, or None if it has none."""
    # Folders without metadata count too: Ray would resume from them, so the check must see them.
    folders = [path for path in Path(run_dir).glob("epoch-*") if path.is_dir()]
    # Names look like epoch-007, so past epoch 999 the longer name is the later one.
    folders.sort(key=lambda folder: (len(folder.name), folder.name))
    return folders[-1] if folders else None


def _with_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    # Checkpoints written before a setting existed lack its key, so it counts as its default.
    try:
        return config_to_dict(config_from_dict(TrainJobConfig, saved, "checkpoint metadata"))
    except (ConfigError, TypeError, ValueError):
        return saved


def _weight_settings(config: dict[str, Any]) -> dict[str, Any]:
    settings = {key: value for key, value in config.items() if key not in RESUMABLE_SECTIONS}
    settings["train"] = {
        key: value
        for key, value in settings.get("train", {}).items()
        if key not in RESUMABLE_TRAIN_KEYS
    }
    return settings


def _write_run_records(job, run_dir: Path, best, history, metadata) -> TrainingOutcome:
    # The kept checkpoint's own metadata names its epoch; with tied val MAE, Ray may keep a
    # later epoch than the first minimum in the history.
    kept = read_metadata(Path(best.path))
    outcome = TrainingOutcome(
        run_dir=run_dir,
        best_checkpoint=Path(best.path),
        best_epoch=int(kept["epoch"]),
        best_val_mae=float(kept["val_mae"]),
        val_persistence_mae=float(history[-1]["val/persistence_mae"]),
        epochs_run=len(history),
    )
    atomic.write_json(run_dir / "config.json", config_to_dict(job))
    atomic.write_json(run_dir / "versions.json", metadata["versions"])
    _write_metrics_csv(run_dir / "metrics.csv", history)
    atomic.write_json(
        run_dir / BEST_CHECKPOINT_FILE,
        {
            "checkpoint": str(outcome.best_checkpoint),
            "epoch": outcome.best_epoch,
            "val_mae": outcome.best_val_mae,
            "val_persistence_mae": outcome.val_persistence_mae,
            "epochs_run": outcome.epochs_run,
            "seed": job.train.seed,
            "data_fingerprint": metadata["data_fingerprint"],
        },
    )
    return outcome


def _write_metrics_csv(path: Path, history: list[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as handle:
        # A run resumed across a version that added a metric has rows with more keys.
        fields = list(dict.fromkeys(key for row in history for key in row))
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(history)
    tmp.replace(path)


def best_checkpoint_of_run(run_dir: Path) -> Path:
    """Return the best checkpoint folder recorded in a run folder."""
    import json

    record = Path(run_dir) / BEST_CHECKPOINT_FILE
    if not record.is_file():
        raise FileNotFoundError(
            f"{record} not found; train first with `python jobs/train.py --config ...`"
        )
    return Path(json.loads(record.read_text())["checkpoint"])
