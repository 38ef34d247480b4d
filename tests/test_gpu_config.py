"""The GPU config, and how training and scoring reject GPU requests a cluster cannot meet."""

import pytest
import ray
import torch
import yaml
from conftest import REPO

from nba_ray import score_job
from nba_ray.config import ConfigError, TrainJobConfig, load_config
from nba_ray.score_job import ScoreInput, run_scoring
from nba_ray.scoring import Companions, Predictor
from nba_ray.trainer import run_training
from nba_ray.training import check_worker_device

GPU_CONFIG = REPO / "configs" / "lstm_gpu.yaml"
CPU_CONFIG = REPO / "configs" / "lstm.yaml"


def gpu_job(*overrides: str) -> TrainJobConfig:
    base = ["splits_dir=splits", "run.storage_path=runs", "score.output_dir=scores"]
    return load_config(GPU_CONFIG, TrainJobConfig, [*base, *overrides])


@pytest.fixture
def ray_without_gpus(ray_local):
    gpus = ray.cluster_resources().get("GPU", 0)
    if gpus:
        pytest.skip(f"the local Ray has {gpus} GPU(s); this check needs a cluster without GPUs")


def test_gpu_config_same_model_as_cpu():
    gpu = load_config(GPU_CONFIG, TrainJobConfig)
    cpu = load_config(CPU_CONFIG, TrainJobConfig)
    assert gpu.model == cpu.model
    assert gpu.train == cpu.train
    assert gpu.splits_dir == cpu.splits_dir


def test_gpu_config_requests_gpus():
    job = load_config(GPU_CONFIG, TrainJobConfig)
    raw = yaml.safe_load(GPU_CONFIG.read_text())
    assert job.scaling.use_gpu is True
    assert job.scaling.num_workers == 1
    assert job.scaling.resources_per_worker == {"CPU": 4, "GPU": 1}
    assert job.score.num_gpus_per_actor == 1
    assert raw["score"]["batch_size"] == 4096
    # A shared name would make the GPU run resume the CPU run's snapshot.
    assert job.run.name != load_config(CPU_CONFIG, TrainJobConfig).run.name


def test_training_without_gpus_fails_before_workers(small_splits, ray_without_gpus):
    job = gpu_job("run.name=gpu-check")
    with pytest.raises(ConfigError, match="scaling.use_gpu is true") as error:
        run_training(job, small_splits)
    assert "1 worker(s) need 1.0 GPU(s), but the Ray cluster has 0" in str(error.value)
    assert "use_gpu: false" in str(error.value)
    # TorchTrainer creates the run folder when it starts; the check runs before that.
    assert not (small_splits / "runs" / "gpu-check").exists()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ((), "score.num_gpus_per_actor=1.0 times score.concurrency=1 needs 1.0 GPU(s)"),
        (
            ("score.num_gpus_per_actor=0.5", "score.concurrency=3"),
            "score.num_gpus_per_actor=0.5 times score.concurrency=3 needs 1.5 GPU(s)",
        ),
    ],
)
def test_scoring_without_gpus_fails_fast(
    small_splits, ray_without_gpus, tmp_path, overrides, expected
):
    source = ScoreInput(split_dir=small_splits / "splits" / "test")
    # The checkpoint folder does not exist: the GPU check must fail before it is read.
    with pytest.raises(ConfigError, match="score.num_gpus_per_actor") as error:
        run_scoring(gpu_job(*overrides), small_splits, source, tmp_path / "none", "gpu-check")
    assert expected in str(error.value)
    assert "but the Ray cluster has 0" in str(error.value)
    assert "score.num_gpus_per_actor: 0" in str(error.value)
    assert not (small_splits / "scores" / "gpu-check").exists()


def test_scoring_gpu_check_skips_cpu_config():
    # No Ray connection in this test: a CPU config must not query the cluster at all.
    settings = load_config(CPU_CONFIG, TrainJobConfig).score
    assert settings.num_gpus_per_actor == 0
    assert score_job.check_gpus(settings) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_predictor_without_cuda_raises(tmp_path):
    with pytest.raises(RuntimeError, match="sees no CUDA device") as error:
        Predictor(str(tmp_path), use_gpu=True, companions=Companions())
    assert "num_gpus_per_actor: 0" in str(error.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_worker_device_without_cuda_raises(device):
    # Ray gives a GPU worker a cuda device even when torch is a CPU-only build.
    with pytest.raises(RuntimeError, match="scaling.use_gpu is true") as error:
        check_worker_device(torch.device(device), use_gpu=True)
    assert "scaling.use_gpu: false" in str(error.value)


def test_worker_device_cpu_run_accepted():
    assert check_worker_device(torch.device("cpu"), use_gpu=False) is None
