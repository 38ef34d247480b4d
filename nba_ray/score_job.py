"""The scoring job: inputs, baselines fitted on the splits, atomic results and the summary."""

import csv
import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray
import ray.data

from nba_ray import PATTERN_MINUTES, atomic, provenance
from nba_ray.baselines import AnalogForecaster, fit_ensemble_weights
from nba_ray.checkpoint import load_checkpoint
from nba_ray.config import ConfigError, ScoreSettings, TrainJobConfig, config_to_dict
from nba_ray.conformal import fit_intervals, interval_report
from nba_ray.data import ID_COLUMNS, arrays_to_numpy, check_split, collect, read_split, split_path
from nba_ray.evaluation import summarize, summary_markdown
from nba_ray.ingest import DataError
from nba_ray.scoring import Companions, companion_forecasts, predict_arrays, score_dataset
from nba_ray.splits import load_games, select_games

logger = logging.getLogger(__name__)

RESULTS_DIR = "results"
ANALOG_NEIGHBOURS = 500
# Rows per Ray Data block when scoring straight from a timeline file.
BLOCK_ROWS = 2048


@dataclasses.dataclass
class ScoreInput:
    """Games to score: a prepared split folder, or seasons of a score-timeline file."""

    split_dir: Path | None = None
    timeline_path: Path | None = None
    seasons: list[str] = dataclasses.field(default_factory=list)
    season_types: list[str] = dataclasses.field(default_factory=lambda: ["regular", "playoff"])

    def describe(self) -> str:
        """Return a one-line description for logs and the run record."""
        if self.split_dir is not None:
            return f"split {self.split_dir}"
        return f"{self.timeline_path} seasons {self.seasons or 'all'} {self.season_types}"


@dataclasses.dataclass
class ScoreOutcome:
    """Location, game counts and summary of a finished scoring run."""

    output_dir: Path
    games_scored: int
    games_rejected: int
    summary: dict
    markdown: str


def load_input(source: ScoreInput, context_features: list[str]):
    """Return (dataset with 2-D array columns, rejected games as (game_id, reason) pairs)."""
    if source.split_dir is not None:
        check_split(source.split_dir, context_features)
        table = pq.read_table(source.split_dir, columns=["game_id", "pattern"])
        pattern = arrays_to_numpy(table)["pattern"]
        bad = ~np.isfinite(pattern).all(axis=1)
        rejects = [
            (game_id, f"fewer than {PATTERN_MINUTES} minutes observed")
            for game_id in np.asarray(table["game_id"].to_pylist())[bad]
        ]
        dataset = read_split(source.split_dir, context_features)
        if rejects:
            dataset = dataset.filter(lambda row: bool(np.isfinite(row["pattern"]).all()))
        return dataset, rejects
    games, skipped = load_games(source.timeline_path, min_observed_s=PATTERN_MINUTES * 60)
    games = select_games(games, source.season_types, source.seasons)
    if games.num_rows == 0:
        raise DataError(f"{source.describe()}: no games to score; widen the selection")
    rejects = [(item.game_id, item.reason) for item in skipped]
    columns = [*ID_COLUMNS, "pattern", "outcome", *context_features]
    table = games.select(columns)
    # Several blocks, so that more than one predictor actor gets work.
    blocks = [table.slice(start, BLOCK_ROWS) for start in range(0, table.num_rows, BLOCK_ROWS)]
    dataset = ray.data.from_arrow(blocks)
    return dataset.map_batches(arrays_to_numpy, batch_format="pyarrow", batch_size=4096), rejects


def fit_companions(splits_dir: Path, loaded, levels: list[float]) -> Companions:
    """Fit analog forecasters on train, ensemble weights on val and intervals on cal.

    Returns empty companions, with a warning, when the splits are not on this machine.
    """
    features = loaded.model.config.context_features
    try:
        for name in ("train", "val", "cal"):
            check_split(split_path(splits_dir, name), features)
    except DataError as error:
        logger.warning("scoring without analog, ensemble and intervals: %s", error)
        return Companions()
    columns = ["pattern", "outcome", *features]
    train, val, cal = (
        collect(read_split(split_path(splits_dir, name), features), columns)
        for name in ("train", "val", "cal")
    )
    normalize = loaded.normalization.pattern.transform
    neighbours = min(ANALOG_NEIGHBOURS, len(train["pattern"]))
    if neighbours < ANALOG_NEIGHBOURS:
        logger.warning("analog forecaster uses k=%d: the train split has fewer games", neighbours)
    analog = AnalogForecaster(k=neighbours, mode="level")
    analog.fit(normalize(train["pattern"]), train["outcome"])
    analog_delta = AnalogForecaster(k=neighbours, mode="delta")
    analog_delta.fit(normalize(train["pattern"]), train["outcome"], train["pattern"][:, -1])
    companions = Companions(analog=analog, analog_delta=analog_delta)

    val_model = predict_arrays(loaded, val)
    val_analog = companion_forecasts(companions, loaded.normalization, val["pattern"], val_model)
    companions.ensemble_weights = fit_ensemble_weights(
        val_model, val_analog["analog"], val["outcome"]
    )
    cal_model = predict_arrays(loaded, cal)
    cal_ensemble = companion_forecasts(companions, loaded.normalization, cal["pattern"], cal_model)
    companions.model_intervals = fit_intervals(cal_model, cal["outcome"], levels)
    companions.ensemble_intervals = fit_intervals(cal_ensemble["ensemble"], cal["outcome"], levels)
    logger.info("ensemble model weights per minute: %s", np.round(companions.ensemble_weights, 2))
    return companions


def check_gpus(settings: ScoreSettings) -> None:
    """Raise if the predictor actors need more GPUs than the Ray cluster has.

    Without this check Ray Data waits for GPUs the cluster does not have, and the job hangs
    unless an autoscaler adds GPU nodes.
    """
    needed = settings.num_gpus_per_actor * settings.concurrency
    if needed <= 0:
        return
    available = ray.cluster_resources().get("GPU", 0)
    # NOTE: GPU nodes that an autoscaler could still add are not counted here.
    if available < needed:
        raise ConfigError(
            f"score.num_gpus_per_actor={settings.num_gpus_per_actor} times "
            f"score.concurrency={settings.concurrency} needs {needed} GPU(s), but the Ray "
            f"cluster has {available}; start Ray on GPU nodes, lower score.concurrency, or set "
            "score.num_gpus_per_actor: 0 to score on CPU"
        )


def run_scoring(
    job: TrainJobConfig, root: Path, source: ScoreInput, checkpoint_dir: Path, name: str
) -> ScoreOutcome:
    """Score `source` with the checkpoint and replace `<output_dir>/<name>` atomically."""
    started = time.perf_counter()
    settings = job.score
    check_gpus(settings)
    loaded = load_checkpoint(checkpoint_dir)
    _warn_on_other_splits(loaded.metadata, Path(root) / job.splits_dir)
    features = loaded.model.config.context_features
    dataset, rejects = load_input(source, features)
    companions = fit_companions(Path(root) / job.splits_dir, loaded, settings.interval_levels)
    scored = score_dataset(
        dataset,
        checkpoint_dir,
        companions,
        settings.batch_size,
        settings.concurrency,
        settings.num_gpus_per_actor,
        settings.num_cpus_per_actor,
    )
    output_dir = Path(root) / settings.output_dir / name
    with atomic.staged_dir(output_dir) as staging:
        # A fresh folder for every run: Ray's write_parquet adds files to an existing folder.
        scored.write_parquet(str(staging / RESULTS_DIR))
        table = pq.read_table(staging / RESULTS_DIR)
        if table.num_rows == 0:
            raise DataError(f"{source.describe()}: every game was rejected; see the reasons above")
        summary = build_summary(table, companions, settings.bootstrap_samples, job.train.seed)
        summary["games_rejected"] = len(rejects)
        summary["checkpoint"] = loaded.checkpoint_id
        summary["in_training_split"] = _games_in_training_split(table, Path(root) / job.splits_dir)
        markdown = "\n".join(
            [summary_markdown(summary), _coverage_line(summary), intervals_markdown(summary)]
        )
        atomic.write_json(staging / "summary.json", summary)
        atomic.write_text(staging / "summary.md", markdown)
        _write_rejects(staging / "rejects.csv", rejects)
        atomic.write_json(
            staging / "run.json",
            {
                "input": source.describe(),
                "checkpoint_dir": str(checkpoint_dir),
                "checkpoint_id": loaded.checkpoint_id,
                "checkpoint_metadata": {
                    k: v for k, v in loaded.metadata.items() if k != "versions"
                },
                "input_fingerprint": _input_fingerprint(source),
                "config": config_to_dict(job),
                "versions": provenance.package_versions(),
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
    logger.info("scored %d games into %s (%d rejected)", table.num_rows, output_dir, len(rejects))
    return ScoreOutcome(output_dir, table.num_rows, len(rejects), summary, markdown)


def _matrix(table: pa.Table, name: str) -> np.ndarray:
    return np.stack(table[name].to_numpy(zero_copy_only=False)).astype(np.float64)


def build_summary(table: pa.Table, companions: Companions, samples: int, seed: int) -> dict:
    """Summarize a results table: MAE per minute beside persistence, and interval coverage."""
    actual = _matrix(table, "actual")
    known = ~np.isnan(actual).all(axis=1)
    others = {
        name: _matrix(table, name)[known]
        for name in ("analog", "analog_delta", "ensemble")
        if name in table.column_names
    }
    if not known.any():
        return {"n_games": 0, "games_scored": table.num_rows, "note": "no observed outcomes"}
    summary = summarize(
        actual[known],
        _matrix(table, "forecast")[known],
        _matrix(table, "persistence")[known],
        others,
        samples=samples,
        seed=seed,
    )
    summary["games_scored"] = table.num_rows
    summary["games_without_outcome"] = int((~known).sum())
    summary["seasons"] = sorted(set(pc.unique(table["season"]).to_pylist()))
    if companions.model_intervals:
        summary["intervals"] = {
            "model": _report(
                _matrix(table, "forecast")[known], actual[known], companions.model_intervals
            ),
            "ensemble": _report(others["ensemble"], actual[known], companions.ensemble_intervals),
        }
    return summary


def _report(predicted, actual, intervals) -> dict:
    return {
        str(level): values
        for level, values in interval_report(predicted, actual, intervals).items()
    }


def intervals_markdown(summary: dict) -> str:
    """Return a Markdown table of conformal coverage and width, or an empty string."""
    if "intervals" not in summary:
        return ""
    lines = [
        "| forecaster | level | coverage (mean) | coverage per minute 18-23 | mean width |",
        "| --- | --- | --- | --- | --- |",
    ]
    for forecaster, levels in summary["intervals"].items():
        for level, report in levels.items():
            per_minute = " ".join(f"{value:.3f}" for value in report["coverage"])
            lines.append(
                f"| {forecaster} | {float(level):.0%} | {np.mean(report['coverage']):.3f} | "
                f"{per_minute} | {np.mean(report['mean_width']):.2f} |"
            )
    return "\n".join(lines) + "\n"


def _write_rejects(path: Path, rejects: list[tuple[str, str]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["game_id", "reason"])
        writer.writerows(rejects)


def _input_fingerprint(source: ScoreInput) -> str:
    if source.split_dir is not None:
        return provenance.folder_fingerprint(source.split_dir)
    return provenance.file_fingerprint(source.timeline_path)


def read_summary(output_dir: Path) -> dict:
    """Read the summary a scoring run wrote."""
    return json.loads((Path(output_dir) / "summary.json").read_text())


def _games_in_training_split(table: pa.Table, splits_dir: Path) -> int | None:
    """Count scored games that the model saw in training, or None when train is absent."""
    train = split_path(splits_dir, "train")
    if not train.is_dir():
        return None
    train_ids = pq.read_table(train, columns=["game_id"])["game_id"].combine_chunks()
    return int(pc.sum(pc.is_in(table["game_id"], value_set=train_ids)).as_py() or 0)


def _coverage_line(summary: dict) -> str:
    seasons = ", ".join(summary.get("seasons", [])) or "none"
    line = f"Seasons scored: {seasons}."
    overlap = summary.get("in_training_split")
    if overlap:
        line += f" {overlap} of these games are in the training split, so their error is in-sample."
    return line + "\n"


def _warn_on_other_splits(metadata: dict, splits_dir: Path) -> None:
    """Log a warning when the splits on disk are not the ones the checkpoint was trained on."""
    manifest = Path(splits_dir) / "manifest.json"
    if not manifest.is_file():
        return
    current = json.loads(manifest.read_text()).get("splits_sha256")
    trained = metadata.get("data_fingerprint")
    if trained and current and trained != current:
        logger.warning(
            "the splits in %s differ from those the checkpoint was trained on (fingerprint %s "
            "vs %s); baselines and intervals are fitted on the current splits",
            splits_dir,
            current[:12],
            trained[:12],
        )
