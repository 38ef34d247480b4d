"""Strict YAML config loading."""

import pytest
from conftest import REPO

from nba_ray.config import ConfigError, DataConfig, TrainJobConfig, load_config


def test_default_configs_load():
    job = load_config(REPO / "configs" / "lstm.yaml", TrainJobConfig)
    assert job.model.hidden_size == 64
    assert job.model.num_layers == 2
    assert job.model.dropout == pytest.approx(0.1)
    assert job.train.batch_size == 32
    assert job.train.max_epochs == 50
    assert job.train.patience_epochs == 5
    assert job.train.grad_clip_norm == 1.0
    assert job.train.learning_rate == pytest.approx(1e-3)
    assert load_config(REPO / "configs" / "data.yaml", DataConfig).season_types == ["regular"]


def test_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  max_epoch: 3\n")
    with pytest.raises(ConfigError, match=r"c.yaml: unknown key train.max_epoch"):
        load_config(path, TrainJobConfig)


def test_wrong_type_names_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("scaling:\n  use_gpu: 'yes'\n")
    with pytest.raises(ConfigError, match="scaling.use_gpu must be of type bool"):
        load_config(path, TrainJobConfig)


def test_override_applies_and_checks(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("{}\n")
    assert load_config(path, TrainJobConfig, ["train.seed=7"]).train.seed == 7
    with pytest.raises(ConfigError, match="train.seed must be of type int"):
        load_config(path, TrainJobConfig, ["train.seed=abc"])


def test_batch_not_divisible_by_workers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("scaling: {num_workers: 3}\n")
    with pytest.raises(ConfigError, match="not divisible by scaling.num_workers=3"):
        load_config(path, TrainJobConfig)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml", TrainJobConfig)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.batch_size=-4", "train.batch_size must be at least 1"),
        ("train.max_epochs=0", "train.max_epochs must be at least 1"),
        ("train.learning_rate=-1", "train.learning_rate must be 0 or more"),
        ("scaling.num_workers=0", "scaling.num_workers must be at least 1"),
        ("score.concurrency=0", "score.concurrency must be at least 1"),
        ("score.batch_size=0", "score.batch_size must be at least 1"),
        ("score.interval_levels=[1.5]", "score.interval_levels must be between 0 and 1"),
    ],
)
def test_out_of_range_values_rejected(override, message):
    with pytest.raises(ConfigError, match=f"lstm.yaml: {message}"):
        load_config(REPO / "configs" / "lstm.yaml", TrainJobConfig, [override])


def test_unknown_season_type_rejected():
    with pytest.raises(ConfigError, match="season_types must be one of"):
        load_config(REPO / "configs" / "data.yaml", DataConfig, ["season_types=[regualr]"])


def test_exponent_floats_from_overrides():
    job = load_config(
        REPO / "configs" / "lstm.yaml",
        TrainJobConfig,
        ["train.learning_rate=1e-3", "train.weight_decay=5E-5"],
    )
    assert job.train.learning_rate == 0.001
    assert job.train.weight_decay == 0.00005
    with pytest.raises(ConfigError, match="learning_rate must be of type float, got 'e-3'"):
        load_config(REPO / "configs" / "lstm.yaml", TrainJobConfig, ["train.learning_rate=e-3"])
