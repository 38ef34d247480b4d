"""Ray Train training on a real local Ray with small real splits."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import REPO

from nba_ray.checkpoint import load_checkpoint
from nba_ray.config import ConfigError, TrainJobConfig, config_to_dict, load_config
from nba_ray.data import collect, fit_normalization, read_split
from nba_ray.ingest import DataError
from nba_ray.scoring import predict_arrays
from nba_ray.trainer import check_resume, latest_checkpoint, run_training


def job_config(name: str, *overrides: str) -> TrainJobConfig:
    base = [f"run.name={name}", "splits_dir=splits", "run.storage_path=runs"]
    return load_config(REPO / "configs" / "lstm.yaml", TrainJobConfig, [*base, *overrides])


def read_history(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def frozen_runs(small_splits, ray_local):
    """Runs with learning rate 0: weights stay at their seeded initial values."""
    one = run_training(
        job_config(
            "frozen-1w",
            "train.learning_rate=0",
            "train.patience_epochs=2",
            "train.max_epochs=10",
            "scaling.num_workers=1",
        ),
        small_splits,
    )
    two = run_training(
        job_config(
            "frozen-2w", "train.learning_rate=0", "train.max_epochs=1", "scaling.num_workers=2"
        ),
        small_splits,
    )
    return one, two


@pytest.fixture(scope="module")
def noisy_runs(small_splits, ray_local):
    """Two runs with the same seed and a high learning rate, so val MAE moves around."""
    overrides = (
        "train.learning_rate=0.02",
        "train.patience_epochs=2",
        "train.max_epochs=12",
        "scaling.num_workers=1",
        "train.seed=3",
    )
    return [run_training(job_config(f"noisy-{i}", *overrides), small_splits) for i in range(2)]


def test_one_and_two_workers_same_val_mae(frozen_runs):
    one, two = frozen_runs
    first_epoch_one = read_history(one.run_dir)[0]["val/mae"]
    first_epoch_two = read_history(two.run_dir)[0]["val/mae"]
    assert first_epoch_one == pytest.approx(first_epoch_two, abs=1e-6)


def test_early_stopping_after_patience(frozen_runs):
    one, _ = frozen_runs
    history = read_history(one.run_dir)
    # Epoch 1 sets the best; epochs 2 and 3 bring no improvement, so patience 2 stops at 3.
    assert one.epochs_run == 3
    assert [row["epoch"] for row in history] == [1, 2, 3]
    # Frozen weights tie every epoch; Ray keeps the latest of equally good checkpoints.
    assert one.best_val_mae == pytest.approx(min(row["val/mae"] for row in history))


def test_same_seed_same_validation_curve(noisy_runs):
    first, second = (read_history(run.run_dir) for run in noisy_runs)
    assert [row["val/mae"] for row in first] == [row["val/mae"] for row in second]
    assert [row["train/loss"] for row in first] == [row["train/loss"] for row in second]


def test_kept_checkpoint_is_best_not_last(noisy_runs):
    run = noisy_runs[0]
    history = read_history(run.run_dir)
    maes = [row["val/mae"] for row in history]
    best_epoch = int(np.argmin(maes)) + 1
    assert run.epochs_run < 12, "the run should have stopped early"
    assert best_epoch != len(history)
    metadata = json.loads((run.best_checkpoint / "metadata.json").read_text())
    assert metadata["epoch"] == best_epoch
    assert metadata["val_mae"] == pytest.approx(min(maes))
    record = json.loads((run.run_dir / "best_checkpoint.json").read_text())
    assert Path(record["checkpoint"]) == run.best_checkpoint


def test_checkpoint_reload_gives_same_predictions(noisy_runs, small_splits, ray_local):
    run = noisy_runs[0]
    val = collect(read_split(small_splits / "splits" / "val"), ["pattern", "outcome"])
    first = predict_arrays(load_checkpoint(run.best_checkpoint), val)
    second = predict_arrays(load_checkpoint(run.best_checkpoint), val)
    np.testing.assert_array_equal(first, second)
    metadata = json.loads((run.best_checkpoint / "metadata.json").read_text())
    assert np.abs(first - val["outcome"]).mean() == pytest.approx(metadata["val_mae"], abs=1e-5)


def test_checkpoint_is_self_describing(noisy_runs):
    metadata = json.loads((noisy_runs[0].best_checkpoint / "metadata.json").read_text())
    for key in (
        "model_config",
        "normalization",
        "job_config",
        "seed",
        "epoch",
        "data_fingerprint",
        "versions",
    ):
        assert key in metadata, key
    assert metadata["seed"] == 3
    assert len(metadata["normalization"]["pattern"]["mean"]) == 18
    assert len(metadata["normalization"]["target"]["std"]) == 6


def test_run_folder_records(noisy_runs):
    run_dir = noisy_runs[0].run_dir
    assert json.loads((run_dir / "config.json").read_text())["train"]["seed"] == 3
    assert "torch" in json.loads((run_dir / "versions.json").read_text())
    assert len(read_history(run_dir)) == noisy_runs[0].epochs_run


def test_changed_settings_rejected_on_resume(noisy_runs, small_splits):
    changed = job_config(
        "noisy-0",
        "train.learning_rate=0.01",
        "train.patience_epochs=2",
        "train.max_epochs=12",
        "scaling.num_workers=1",
        "train.seed=3",
    )
    with pytest.raises(ConfigError, match=r"train\.learning_rate: 0\.02 -> 0\.01") as error:
        run_training(changed, small_splits)
    assert str(noisy_runs[0].run_dir) in str(error.value)
    # The rejected call must not have touched the finished run.
    assert read_history(noisy_runs[0].run_dir)[0]["epoch"] == 1
    assert len(read_history(noisy_runs[0].run_dir)) == noisy_runs[0].epochs_run


def write_checkpoint_metadata(run_dir: Path, epoch: int, job: TrainJobConfig, fingerprint: str):
    folder = run_dir / f"epoch-{epoch:03d}"
    folder.mkdir(parents=True)
    metadata = {
        "job_config": config_to_dict(job),
        "model_config": config_to_dict(job)["model"],
        "normalization": {},
        "data_fingerprint": fingerprint,
        "epoch": epoch,
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))


def test_resume_check_reads_latest_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    old, current = job_config("r", "train.seed=1"), job_config("r")
    write_checkpoint_metadata(run_dir, 9, old, "abc")
    write_checkpoint_metadata(run_dir, 1000, current, "abc")
    assert latest_checkpoint(run_dir) == run_dir / "epoch-1000"
    check_resume(current, run_dir, {"data_fingerprint": "abc"})
    with pytest.raises(ConfigError, match="train.seed: 0 -> 1"):
        check_resume(old, run_dir, {"data_fingerprint": "abc"})


def test_resume_check_rejects_other_splits(tmp_path):
    job = job_config("r")
    write_checkpoint_metadata(tmp_path / "run", 4, job, "abc")
    with pytest.raises(ConfigError, match="splits fingerprint: 'abc' -> 'def'"):
        check_resume(job, tmp_path / "run", {"data_fingerprint": "def"})


def test_resume_check_allows_hardware_changes(tmp_path):
    saved = job_config("r")
    write_checkpoint_metadata(tmp_path / "run", 4, saved, "abc")
    resumed = job_config(
        "r",
        "scaling.num_workers=1",
        "train.max_epochs=80",
        "train.patience_epochs=9",
        "score.concurrency=2",
        "run.max_failures=2",
    )
    check_resume(resumed, tmp_path / "run", {"data_fingerprint": "abc"})
    assert latest_checkpoint(tmp_path / "empty") is None
    check_resume(resumed, tmp_path / "empty", {"data_fingerprint": "xyz"})


def test_resume_check_reads_folder_without_metadata(tmp_path):
    job = job_config("r")
    write_checkpoint_metadata(tmp_path / "run", 4, job, "abc")
    # Ray resumes from the newest checkpoint folder even when its metadata is gone.
    (tmp_path / "run" / "epoch-005").mkdir()
    with pytest.raises(ConfigError, match="epoch-005, which cannot be read"):
        check_resume(job, tmp_path / "run", {"data_fingerprint": "abc"})


def test_resume_check_fills_keys_added_later(tmp_path):
    job = job_config("r")
    write_checkpoint_metadata(tmp_path / "run", 4, job, "abc")
    path = tmp_path / "run" / "epoch-004" / "metadata.json"
    metadata = json.loads(path.read_text())
    # A checkpoint written before the mirror_sides setting existed.
    del metadata["job_config"]["model"]["mirror_sides"]
    path.write_text(json.dumps(metadata))
    check_resume(job, tmp_path / "run", {"data_fingerprint": "abc"})
    mirrored = job_config("r", "model.mirror_sides=true")
    with pytest.raises(ConfigError, match="model.mirror_sides: False -> True"):
        check_resume(mirrored, tmp_path / "run", {"data_fingerprint": "abc"})


def test_raised_patience_continues_stopped_run(small_splits, ray_local):
    frozen = ("train.learning_rate=0", "train.max_epochs=10", "scaling.num_workers=1")
    first = run_training(job_config("patience", *frozen, "train.patience_epochs=1"), small_splits)
    # Frozen weights tie every epoch, so patience 1 stops after epoch 2.
    assert first.epochs_run == 2
    again = run_training(job_config("patience", *frozen, "train.patience_epochs=3"), small_splits)
    # Epoch 2 already counts as one epoch without improvement, so patience 3 allows 3 and 4.
    assert [row["epoch"] for row in read_history(again.run_dir)] == [1, 2, 3, 4]


def test_mirrored_run_trains_both_sides(small_splits, ray_local):
    overrides = ["run.name=mirror", "splits_dir=splits", "run.storage_path=runs"]
    job = load_config(
        REPO / "configs" / "lstm_plus.yaml",
        TrainJobConfig,
        [*overrides, "train.max_epochs=1", "scaling.num_workers=2"],
    )
    assert job.model.mirror_sides
    outcome = run_training(job, small_splits)
    history = read_history(outcome.run_dir)
    # 300 training games seen from both sides are 600 rows: 18 global batches of 32.
    assert history[0]["train/samples"] == 18 * 32
    model = load_checkpoint(outcome.best_checkpoint).model
    assert model.head.in_features == 64 + len(job.model.context_features) + 1


def test_normalization_fit_on_train_only(small_splits, tmp_path, ray_local):
    job = job_config("norm")
    splits = tmp_path / "splits"
    shutil.copytree(small_splits / "splits", splits)
    before = fit_normalization(read_split(splits / "train"), job.model)
    table = pq.read_table(splits / "val" / "games.parquet")
    pattern = table["pattern"].combine_chunks()
    shifted = pc.multiply(pattern.flatten(), 10.0)
    import pyarrow as pa

    table = table.set_column(
        table.schema.get_field_index("pattern"),
        "pattern",
        pa.FixedSizeListArray.from_arrays(shifted.cast(pa.float32()), 18),
    )
    pq.write_table(table, splits / "val" / "games.parquet")
    after = fit_normalization(read_split(splits / "train"), job.model)
    assert after.to_dict() == before.to_dict()
    train = collect(read_split(splits / "train"), ["pattern"])
    np.testing.assert_allclose(before.pattern.mean, train["pattern"].mean(axis=0), rtol=1e-6)


def test_missing_splits_fail_before_workers(tmp_path, ray_local):
    with pytest.raises(DataError, match="manifest.json not found"):
        run_training(job_config("missing"), tmp_path)


def test_wrong_split_columns_fail(small_splits, tmp_path, ray_local):
    shutil.copytree(small_splits / "splits", tmp_path / "splits")
    path = tmp_path / "splits" / "train" / "games.parquet"
    pq.write_table(pq.read_table(path).drop(["outcome"]), path)
    with pytest.raises(DataError, match="train/games.parquet: missing column outcome"):
        run_training(job_config("columns"), tmp_path)


def test_empty_train_split_fails(small_splits, tmp_path, ray_local):
    shutil.copytree(small_splits / "splits", tmp_path / "splits")
    path = tmp_path / "splits" / "train" / "games.parquet"
    pq.write_table(pq.read_table(path).slice(0, 0), path)
    with pytest.raises(DataError, match="the split has no games"):
        run_training(job_config("empty"), tmp_path)
