"""Train and score one model config under several seeds at once, and summarize across seeds.

Each seed is one Ray Tune trial of a grid over seeds. The trial reserves no CPU because it
only drives the work: through a task (see `seed_trial` for why) it launches a TorchTrainer
(Ray Train V2) for its seed and then scores the test split. `max_concurrent_trials` caps how
many trainers compete for the workers' resources. Seed k trains as run `<run.name>-seed<k>`
and scores into `<run.name>-seed<k>`. A rerun reuses finished seeds. The across-seed summary
goes to `<score.output_dir>/<run.name>-multiseed/`.
"""

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Literal

import ray
import ray.tune

from nba_ray import atomic, provenance
from nba_ray.config import (
    ConfigError,
    TrainJobConfig,
    changed_keys,
    config_from_dict,
    config_to_dict,
)
from nba_ray.logs import setup_logging
from nba_ray.score_job import ScoreInput, run_scoring
from nba_ray.seed_markdown import summary_markdown
from nba_ray.seed_summary import summarize_seeds, write_seeds_csv
from nba_ray.splits import read_manifest
from nba_ray.trainer import BEST_CHECKPOINT_FILE, resolve_path, run_training

logger = logging.getLogger(__name__)

MULTISEED_SUFFIX = "-multiseed"
TEST_SPLIT = "test"
# Tune rejects a trial that requests no resources at all, so each trial reserves a token
# 1 MiB of memory and no CPU, which leaves every CPU to the TorchTrainer workers.
TRIAL_RESOURCES = {"CPU": 0, "memory": 2**20}
# CPUs kept free for the Ray Data read tasks of a scoring run, beside its predictor actors.
SCORING_READ_CPUS = 1.0

Action = Literal["reuse", "score", "train"]


@dataclasses.dataclass
class SeedPlan:
    """The action planned for one seed, and the folders of that seed's run and scores."""

    seed: int
    run_dir: Path
    score_dir: Path
    # "reuse" means trained and scored with this config. "score" means trained, with scores
    # missing or stale. "train" means no finished run, so train (resuming an interrupted run
    # from its last checkpoint) and score.
    action: Action


@dataclasses.dataclass
class MultiseedOutcome:
    """The across-seed summary, its folder and Markdown, and the plan of every seed."""

    output_dir: Path
    summary: dict
    markdown: str
    plans: list[SeedPlan]


def seed_job(job: TrainJobConfig, seed: int) -> TrainJobConfig:
    """Return a copy of `job` with `train.seed` set and the run named `<run.name>-seed<k>`."""
    copy = config_from_dict(TrainJobConfig, config_to_dict(job))
    copy.train.seed = seed
    copy.run.name = f"{job.run.name}-seed{seed}"
    return copy


def trial_peak_resources(job: TrainJobConfig) -> dict[str, float]:
    """Return the most of each resource that one seed's trial reserves at any time.

    A trial first reserves its trainer's workers and later the scoring actors, plus one CPU
    for the read tasks that feed those actors. Without that CPU, two trials scoring at once
    can each keep an actor while neither can run a read task, and both wait forever.
    """
    per_worker = dict(job.scaling.resources_per_worker) or {"CPU": 1.0}
    if job.scaling.use_gpu:
        per_worker.setdefault("GPU", 1.0)
    else:
        per_worker.pop("GPU", None)
    training = {name: amount * job.scaling.num_workers for name, amount in per_worker.items()}
    score = job.score
    scoring = {
        "CPU": score.concurrency * score.num_cpus_per_actor + SCORING_READ_CPUS,
        "GPU": score.concurrency * score.num_gpus_per_actor,
    }
    peak = {}
    for name in sorted(set(training) | set(scoring)):
        amount = max(training.get(name, 0.0), scoring.get(name, 0.0))
        if amount > 0:
            peak[name] = amount
    return peak


def max_concurrent_trials(job: TrainJobConfig, cluster: dict[str, float]) -> int:
    """Return how many seeds fit on `cluster` (e.g. `ray.cluster_resources()`) at once.

    Raises ConfigError when not even one seed fits, because its trial would wait forever.
    """
    limits = []
    for name, needed in trial_peak_resources(job).items():
        available = cluster.get(name, 0.0)
        if available < needed:
            raise ConfigError(
                f"one seed needs {needed:g} {name} at a time ({job.scaling.num_workers} "
                f"training worker(s), or {job.score.concurrency} scoring actor(s) and their "
                f"read tasks) but the Ray cluster has {available:g}; lower scaling.num_workers, "
                "scaling.resources_per_worker or the score settings"
            )
        limits.append(int(available // needed))
    return max(1, min(limits, default=1))


def plan_seed(job: TrainJobConfig, root: Path, seed: int, manifest: dict) -> SeedPlan:
    """Decide whether seed `seed` must be trained, only scored, or can be reused as it is.

    Raises ConfigError when a finished run of that name was trained with another config or
    other splits, since training under the same name would resume it instead of starting over.
    """
    job = seed_job(job, seed)
    run_dir = Path(resolve_path(root, job.run.storage_path)) / job.run.name
    score_dir = Path(root) / job.score.output_dir / job.run.name
    record_path = run_dir / BEST_CHECKPOINT_FILE
    if not record_path.is_file():
        return SeedPlan(seed, run_dir, score_dir, "train")
    record = json.loads(record_path.read_text())
    expected = config_to_dict(job)
    trained_with = json.loads((run_dir / "config.json").read_text())
    changed = changed_keys(_without_score(trained_with), _without_score(expected))
    if record.get("data_fingerprint") != manifest.get("splits_sha256"):
        changed.append("splits (data fingerprint)")
    if changed:
        raise ConfigError(
            f"{run_dir} contains a finished run with other settings ({', '.join(changed)}); "
            "rerunning under that name would resume it, so pick another run.name or delete "
            "the folder"
        )
    if _scores_match(score_dir, expected, record["checkpoint"], root / job.splits_dir):
        return SeedPlan(seed, run_dir, score_dir, "reuse")
    return SeedPlan(seed, run_dir, score_dir, "score")


def _without_score(config: dict[str, Any]) -> dict[str, Any]:
    # Scoring settings do not change the trained weights.
    return {key: value for key, value in config.items() if key != "score"}


def _scores_match(score_dir: Path, config: dict, checkpoint: str, splits_dir: Path) -> bool:
    run_record = score_dir / "run.json"
    if not ((score_dir / "summary.json").is_file() and run_record.is_file()):
        return False
    record = json.loads(run_record.read_text())
    return (
        record.get("config") == config
        and record.get("checkpoint_dir") == checkpoint
        and record.get("input_fingerprint")
        == provenance.folder_fingerprint(splits_dir / TEST_SPLIT)
    )


def seed_trial(
    trial_config: dict[str, Any], job_config: dict[str, Any], root: str, actions: dict[int, str]
) -> None:
    """Tune function trainable: train seed `trial_config["seed"]` if needed, then score it.

    The work runs in a task scheduled outside the trial's placement group. Ray Data creates
    shared detached actors (dataset statistics, actor locations) on first use. Created from
    inside a trial, they would join its placement group and die when that trial ends, which
    fails the trials still running (seen with Ray 2.60).
    """
    seed = trial_config["seed"]
    task = train_and_score_seed.options(scheduling_strategy="DEFAULT")
    metrics = ray.get(task.remote(job_config, root, seed, actions[seed]))
    ray.tune.report(metrics)


@ray.remote(num_cpus=0)
def train_and_score_seed(
    job_config: dict[str, Any], root: str, seed: int, action: str
) -> dict[str, float]:
    """Train seed `seed` of `job_config` when `action` is "train", then score the test split."""
    setup_logging()
    root_path = Path(root)
    job = seed_job(config_from_dict(TrainJobConfig, job_config), seed)
    run_dir = Path(resolve_path(root_path, job.run.storage_path)) / job.run.name
    if action == "train":
        logger.info("seed %d: training %s", seed, job.run.name)
        checkpoint = run_training(job, root_path).best_checkpoint
    else:
        record = json.loads((run_dir / BEST_CHECKPOINT_FILE).read_text())
        checkpoint = Path(record["checkpoint"])
    logger.info("seed %d: scoring the test split with %s", seed, checkpoint)
    source = ScoreInput(split_dir=root_path / job.splits_dir / TEST_SPLIT)
    outcome = run_scoring(job, root_path, source, checkpoint, job.run.name)
    return {"seed": seed, "test_mae": outcome.summary["mae_average"]["model"]}


def run_seed_trials(job: TrainJobConfig, root: Path, plans: list[SeedPlan]) -> None:
    """Run one Tune trial per plan on the connected Ray cluster, as many at once as fit."""
    concurrency = max_concurrent_trials(job, ray.cluster_resources())
    logger.info(
        "running %d seed trial(s), at most %d at once: %s",
        len(plans),
        concurrency,
        ", ".join(f"seed {p.seed} ({p.action})" for p in plans),
    )
    actions = {plan.seed: plan.action for plan in plans}
    trainable = ray.tune.with_parameters(
        seed_trial, job_config=config_to_dict(job), root=str(root), actions=actions
    )
    tuner = ray.tune.Tuner(
        ray.tune.with_resources(trainable, TRIAL_RESOURCES),
        param_space={"seed": ray.tune.grid_search(list(actions))},
        tune_config=ray.tune.TuneConfig(max_concurrent_trials=concurrency),
        run_config=ray.tune.RunConfig(
            name=f"{job.run.name}{MULTISEED_SUFFIX}-tune",
            storage_path=resolve_path(root, job.run.storage_path),
            verbose=0,
        ),
    )
    results = tuner.fit()
    for result in results:
        if result.error is not None:
            logger.error("seed trial %s failed: %s", result.config, result.error)


def run_multiseed(
    job: TrainJobConfig, root: Path, seeds: list[int], write_report: bool = True
) -> MultiseedOutcome:
    """Train and score `job` under each seed, reusing finished seeds, and summarize them."""
    if not seeds:
        raise ConfigError("no seeds given; pass --seeds N or --seed-list")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct, got {seeds}")
    root = Path(root).resolve()
    manifest = read_manifest(root / job.splits_dir)
    plans = [plan_seed(job, root, seed, manifest) for seed in seeds]
    for plan in plans:
        if plan.action == "reuse":
            logger.info(
                "seed %d: reusing finished run %s and its test scores %s",
                plan.seed,
                plan.run_dir,
                plan.score_dir,
            )
    pending = [plan for plan in plans if plan.action != "reuse"]
    if pending:
        run_seed_trials(job, root, pending)
    unfinished = [
        plan.seed for plan in plans if plan_seed(job, root, plan.seed, manifest).action != "reuse"
    ]
    if unfinished:
        raise RuntimeError(
            f"seed(s) {unfinished} did not finish training and scoring; see the trial errors "
            "above, fix them and rerun (finished seeds are reused)"
        )
    return _write_summary(job, root, plans, write_report)


def _write_summary(
    job: TrainJobConfig, root: Path, plans: list[SeedPlan], write_report: bool
) -> MultiseedOutcome:
    summary = summarize_seeds(
        [plan.seed for plan in plans],
        [plan.score_dir for plan in plans],
        bootstrap_samples=job.score.bootstrap_samples,
    )
    summary["runs"] = [_run_entry(plan) for plan in plans]
    summary["splits_dir"] = str(root / job.splits_dir)
    summary["config"] = config_to_dict(job)
    summary["versions"] = provenance.package_versions()
    markdown = summary_markdown(summary)
    output_dir = root / job.score.output_dir / f"{job.run.name}{MULTISEED_SUFFIX}"
    with atomic.staged_dir(output_dir) as staging:
        write_seeds_csv(staging / "seeds.csv", summary)
        atomic.write_json(staging / "summary.json", summary)
        atomic.write_text(staging / "summary.md", markdown)
        if write_report:
            # Imported here so that training and scoring never load matplotlib.
            from nba_ray.report import write_report as write_figures_and_report

            write_figures_and_report(staging)
    logger.info("wrote the across-seed summary to %s", output_dir)
    return MultiseedOutcome(output_dir, summary, markdown, plans)


def _run_entry(plan: SeedPlan) -> dict[str, Any]:
    record = json.loads((plan.run_dir / BEST_CHECKPOINT_FILE).read_text())
    return {
        "seed": plan.seed,
        "action": {"reuse": "reused", "score": "scored", "train": "trained and scored"}[
            plan.action
        ],
        "run_dir": str(plan.run_dir),
        "score_dir": str(plan.score_dir),
        "checkpoint": record["checkpoint"],
        "best_epoch": record["epoch"],
        "epochs_run": record["epochs_run"],
        "best_val_mae": record["val_mae"],
    }
