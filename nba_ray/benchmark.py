"""Measurements of what Ray costs and buys at this data size: training, scoring, data
preparation and memory.

Every Ray figure is set against a plain single-process baseline measured in the same run and
repeat, because other processes share the machine and absolute times drift between runs.
`jobs/benchmark.py` runs the measurements and writes the Markdown report.
"""

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import platform
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import ray
import torch

from nba_ray import PATTERN_MINUTES, provenance
from nba_ray.checkpoint import load_checkpoint
from nba_ray.config import DataConfig, TrainJobConfig, load_config
from nba_ray.data import (
    ID_COLUMNS,
    arrays_to_numpy,
    fit_normalization,
    read_split,
    split_path,
    with_model_inputs,
)
from nba_ray.model import LSTMForecaster
from nba_ray.score_job import ScoreInput, load_input
from nba_ray.scoring import Companions, Predictor, predict_arrays, score_dataset
from nba_ray.splits import load_games, prepare_splits, select_games
from nba_ray.trainer import build_trainer
from nba_ray.training import (
    SCORE_METRIC,
    load_tensors,
    loss_function,
    predict_points,
    seed_epoch,
    seed_everything,
    train_epoch,
)

logger = logging.getLogger(__name__)

SEASON_TYPE = "regular"
# Process titles Ray gives a Train worker and a Ray Data actor-pool worker.
TRAIN_WORKER_TITLE = "ray::RayTrainWorker"
PREDICTOR_TITLE = "ray::MapWorker"


@dataclasses.dataclass
class BenchmarkOptions:
    """Benchmark settings: repeats, epochs, worker and season counts, configs and scratch folder."""

    root: Path
    data_config: Path
    train_config: Path
    repeats: int = 3
    epochs: int = 3
    worker_counts: tuple[int, ...] = (1, 2)
    season_counts: tuple[int, ...] = (1, 4, 12)
    # Scratch folder for splits, runs and checkpoints; None uses a temporary folder.
    work_dir: Path | None = None


def samples_per_epoch(train_rows: int, num_workers: int, global_batch: int) -> int:
    """Training samples one epoch processes across all workers.

    Ray splits the train split into equal shards, each worker takes `global_batch / workers`
    rows per step, and every rank runs the step count of the smallest shard.
    """
    per_worker_batch = global_batch // num_workers
    steps = (train_rows // num_workers) // per_worker_batch
    return steps * per_worker_batch * num_workers


# ---------------------------------------------------------------------------------------------
# Machine, memory and Ray worker processes


def machine_info() -> dict[str, Any]:
    """Return the CPU model, cores, memory, load and package versions of this machine."""
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        "load_average": os.getloadavg(),
        "versions": provenance.package_versions(),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def driver_peak_rss_mib() -> float:
    """Peak resident memory of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Ray's worker processes are found and sampled through /proc, so this part runs on Linux only.
PROC = Path("/proc")


def _read_proc(pid: int, name: str) -> bytes:
    return (PROC / str(pid) / name).read_bytes()


def descendant_pids(pid: int) -> list[int]:
    """Return the pids of every live descendant of process `pid`, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = _read_proc(int(entry.name), "stat").decode()
            # The command name in brackets may contain spaces, so parse after the last ')'.
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], list(children.get(pid, []))
    while pending:
        child = pending.pop()
        found.append(child)
        pending.extend(children.get(child, []))
    return found


def process_title(pid: int) -> str:
    """Return argv[0] of `pid`, which Ray rewrites to titles such as `ray::RayTrainWorker`."""
    return _read_proc(pid, "cmdline").split(b"\0")[0].decode(errors="replace").strip()


def peak_rss_bytes(pid: int) -> int:
    """Return the kernel's peak RSS of `pid` (VmHWM), which a late sample still reports."""
    for line in _read_proc(pid, "status").decode().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"/proc/{pid}/status has no VmHWM line")


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU seconds process `pid` has used so far."""
    stat = _read_proc(pid, "stat").decode()
    # utime and stime are fields 14 and 15; the name in brackets may contain spaces.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RayProcessMonitor:
    """Background sampler of the Ray worker processes this driver starts, and of a run folder.

    Records each worker's peak RSS and CPU seconds and when each process title was first
    seen. For `watch_dir` it records when each entry first appeared and the workers' CPU
    seconds at that moment; Ray Train creates `epoch-NNN` there when that epoch's report
    lands. A process that already carried a title when the monitor started, such as an actor
    of an earlier run still shutting down, is left out under that title. Times are
    `time.perf_counter()` values, sampled every `interval_s`.
    """

    def __init__(self, watch_dir: Path | None = None, interval_s: float = 0.25):
        self.watch_dir = watch_dir
        self.interval_s = interval_s
        self.title_first_seen: dict[int, dict[str, float]] = {}
        self.peak_rss: dict[int, int] = {}
        self.cpu_s: dict[int, float] = {}
        self.first_seen: dict[str, float] = {}
        self.cpu_at_entry: dict[str, dict[int, float]] = {}
        self._earlier: set[tuple[int, str]] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ray-process-monitor", daemon=True)

    def __enter__(self) -> "RayProcessMonitor":
        self._earlier = self._titles_now()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _titles_now(self) -> set[tuple[int, str]]:
        found = set()
        for pid in descendant_pids(os.getpid()):
            with contextlib.suppress(OSError):
                found.add((pid, process_title(pid)))
        return found

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)
        self._sample()

    def _sample(self) -> None:
        now = time.perf_counter()
        for pid in descendant_pids(os.getpid()):
            # A process can exit between listing and reading; its last sample is kept.
            with contextlib.suppress(OSError):
                title = process_title(pid)
                if not title.startswith("ray::") or (pid, title) in (self._earlier or ()):
                    continue
                self.title_first_seen.setdefault(pid, {}).setdefault(title, now)
                self.peak_rss[pid] = max(peak_rss_bytes(pid), self.peak_rss.get(pid, 0))
                self.cpu_s[pid] = cpu_seconds(pid)
        if self.watch_dir is not None and self.watch_dir.is_dir():
            for entry in os.scandir(self.watch_dir):
                if entry.name not in self.first_seen:
                    self.first_seen[entry.name] = now
                    self.cpu_at_entry[entry.name] = dict(self.cpu_s)

    def pids_titled(self, prefix: str) -> list[int]:
        """Return the worker pids that carried a process title starting with `prefix`."""
        return [
            pid
            for pid, titles in self.title_first_seen.items()
            if any(title.startswith(prefix) for title in titles)
        ]

    def first_titled(self, prefix: str) -> float | None:
        """Return when a process titled `prefix` was first seen, or None if none was."""
        times = [
            seen
            for titles in self.title_first_seen.values()
            for title, seen in titles.items()
            if title.startswith(prefix)
        ]
        return min(times) if times else None

    def peak_rss_mib(self, prefix: str) -> float | None:
        """Return the largest peak RSS among workers titled `prefix`, or None if none ran."""
        peaks = [self.peak_rss[pid] for pid in self.pids_titled(prefix) if pid in self.peak_rss]
        return max(peaks) / 2**20 if peaks else None

    def cpu_between(self, prefix: str, first: str, second: str) -> float | None:
        """Return the CPU seconds workers titled `prefix` used between two watched entries."""
        if first not in self.cpu_at_entry or second not in self.cpu_at_entry:
            return None
        start, end = self.cpu_at_entry[first], self.cpu_at_entry[second]
        return sum(end[pid] - start.get(pid, 0.0) for pid in self.pids_titled(prefix) if pid in end)


@ray.remote
def _probe_worker() -> dict[str, Any]:
    # Imports torch inside the task so the thread count reflects the worker's environment.
    import torch as worker_torch

    return {
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "torch_threads": worker_torch.get_num_threads(),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def probe_worker(num_cpus: float) -> dict[str, Any]:
    """Return OMP_NUM_THREADS, torch's thread count and peak RSS seen by a Ray task.

    Ray sets OMP_NUM_THREADS to a task's or actor's whole CPUs when it is unset, and Train
    workers are actors, so the task represents a Train worker with `num_cpus` CPUs.
    """
    return ray.get(_probe_worker.options(num_cpus=num_cpus).remote())


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with `count` intra-op torch threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ---------------------------------------------------------------------------------------------
# Data preparation


def time_prepare(config: DataConfig, root: Path) -> dict[str, Any]:
    """Run prepare_splits once; return its wall and CPU seconds and the split sizes.

    CPU seconds barely change with the machine's load, so they show the work itself when
    other processes slow the wall time down.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    manifest = prepare_splits(config, root)
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    games = {name: info["games"] for name, info in manifest["splits"].items()}
    return {
        "seconds": seconds,
        "cpu_s": cpu_s,
        "games": games,
        "skipped": manifest["skipped_games"],
    }


# ---------------------------------------------------------------------------------------------
# Training


def training_job(options: BenchmarkOptions, splits_dir: Path, runs_dir: Path) -> TrainJobConfig:
    """Load the training config with a fixed epoch count and the benchmark's folders."""
    overrides = [
        f"train.max_epochs={options.epochs}",
        # Stops only after `epochs` epochs without improvement, so every run trains them all.
        f"train.patience_epochs={options.epochs}",
        f"splits_dir={splits_dir}",
        f"run.storage_path={runs_dir}",
    ]
    return load_config(options.root / options.train_config, TrainJobConfig, overrides)


def with_workers(job: TrainJobConfig, num_workers: int, run_name: str) -> TrainJobConfig:
    """Return a copy of `job` with another worker count and run name."""
    return dataclasses.replace(
        job,
        scaling=dataclasses.replace(job.scaling, num_workers=num_workers),
        run=dataclasses.replace(job.run, name=run_name),
    )


def training_tensors(job: TrainJobConfig, root: Path) -> dict[str, Any]:
    """Build the train and val tensors exactly as build_trainer and the Ray workers do."""
    splits_dir = Path(root) / job.splits_dir
    train = read_split(split_path(splits_dir, "train"))
    val = read_split(split_path(splits_dir, "val"))
    normalization = fit_normalization(train, job.model)
    cpu = torch.device("cpu")
    return {
        "train": load_tensors(
            with_model_inputs(train, normalization, job.model, for_training=True).materialize(), cpu
        ),
        "val": load_tensors(with_model_inputs(val, normalization, job.model).materialize(), cpu),
        "normalization": normalization,
    }


def run_plain_training(job: TrainJobConfig, tensors: dict[str, Any], threads: int) -> dict:
    """Train in this process with the Ray worker's epoch functions; return timings and losses.

    Mirrors train_loop_per_worker for one worker: the same seed, model, optimizer, step count
    and per-epoch permutation, and validation on the whole val split inside the epoch time.
    """
    train, val = tensors["train"], tensors["val"]
    with torch_threads(threads):
        started, cpu_started = time.perf_counter(), time.process_time()
        seed_everything(job.train.seed)
        model = LSTMForecaster(job.model)
        optimizer = torch.optim.Adam(
            model.parameters(), lr=job.train.learning_rate, weight_decay=job.train.weight_decay
        )
        criterion = loss_function(job.train.loss)
        num_batches = len(train["x"]) // job.train.batch_size
        epoch_seconds, epoch_cpu, losses = [], [], []
        for epoch in range(1, job.train.max_epochs + 1):
            epoch_started, epoch_cpu_started = time.perf_counter(), time.process_time()
            # Seeds the shuffle and the dropout masks as train_loop_per_worker does for rank 0,
            # so the report can check that both loops compute the same epoch losses.
            generator = seed_epoch(job.train.seed, epoch, rank=0)
            loss = train_epoch(
                model,
                train,
                optimizer,
                criterion,
                job.train.batch_size,
                num_batches,
                generator,
                job.train.grad_clip_norm,
            )
            predict_points(model, val, tensors["normalization"], job.model.target)
            epoch_seconds.append(time.perf_counter() - epoch_started)
            epoch_cpu.append(time.process_time() - epoch_cpu_started)
            losses.append(loss)
        wall, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "wall_s": wall,
        "cpu_s": cpu_s,
        "epoch_seconds": epoch_seconds,
        "epoch_cpu_s": epoch_cpu,
        "train_losses": losses,
    }


def run_ray_training(job: TrainJobConfig, root: Path) -> dict:
    """Train through TorchTrainer; return the build and fit times and where fit spent them."""
    metadata = {"model_config": dataclasses.asdict(job.model), "seed": job.train.seed}
    started = time.perf_counter()
    trainer = build_trainer(job, root, metadata)
    build_s = time.perf_counter() - started

    run_dir = Path(job.run.storage_path) / job.run.name
    with RayProcessMonitor(watch_dir=run_dir) as monitor:
        fit_started = time.perf_counter()
        result = trainer.fit()
        fit_s = time.perf_counter() - fit_started

    history = result.return_value or []
    best = result.get_best_checkpoint(SCORE_METRIC, "min")
    if best is None:
        raise RuntimeError(f"run {job.run.name} finished without a checkpoint")
    if len(history) != job.train.max_epochs:
        raise RuntimeError(
            f"run {job.run.name} trained {len(history)} epochs, expected {job.train.max_epochs}"
        )

    epoch_seconds = [float(row["epoch_seconds"]) for row in history]
    reports = sorted(
        seen - fit_started for name, seen in monitor.first_seen.items() if name.startswith("epoch-")
    )
    worker_seen = monitor.first_titled(TRAIN_WORKER_TITLE)
    # CPU of all workers between consecutive reports: one epoch plus one report each.
    names = sorted(name for name in monitor.first_seen if name.startswith("epoch-"))
    epoch_cpu = [
        monitor.cpu_between(TRAIN_WORKER_TITLE, before, after)
        for before, after in zip(names, names[1:], strict=False)
    ]
    return {
        "build_s": build_s,
        "wall_s": fit_s,
        "epoch_seconds": epoch_seconds,
        "epoch_cpu_s": [value for value in epoch_cpu if value is not None],
        "train_losses": [float(row["train/loss"]) for row in history],
        # Until a process carries the Train worker title: controller and worker actors.
        "workers_up_s": worker_seen - fit_started if worker_seen is not None else None,
        **split_fit_time(fit_s, epoch_seconds, reports),
        "worker_peak_rss_mib": monitor.peak_rss_mib(TRAIN_WORKER_TITLE),
        "best_checkpoint": Path(best.path),
    }


def split_fit_time(
    fit_s: float, epoch_seconds: list[float], reports: list[float]
) -> dict[str, float | None]:
    """Split fit wall time into start-up, per-epoch reporting and shutdown.

    `reports` are the seconds after fit started at which each epoch's checkpoint folder
    appeared. One report costs the gap between two reports minus the later epoch's own time.
    Start-up is the time before the first report minus the first epoch and one report. With
    fewer than two reports, start-up includes the first report.
    """
    if len(reports) != len(epoch_seconds):
        return {"startup_s": None, "report_s": None, "shutdown_s": None}
    gaps = [reports[i] - reports[i - 1] - epoch_seconds[i] for i in range(1, len(reports))]
    report_s = statistics.median(gaps) if gaps else None
    return {
        "startup_s": reports[0] - epoch_seconds[0] - (report_s or 0.0),
        "report_s": report_s,
        "shutdown_s": fit_s - reports[-1],
    }


def training_benchmark(options: BenchmarkOptions, splits_dir: Path, runs_dir: Path) -> dict:
    """Interleave the plain loop and Ray runs per repeat, rotating their order."""
    job = training_job(options, splits_dir, runs_dir)
    # Ray gives a worker max(1, floor(CPUs)) OMP threads; the plain loop gets the same.
    threads = max(1, int(job.scaling.resources_per_worker.get("CPU", 1)))
    started = time.perf_counter()
    tensors = training_tensors(job, options.root)
    tensor_s = time.perf_counter() - started

    paths = ["plain", *(f"ray-{n}" for n in options.worker_counts)]
    runs: dict[str, list[dict]] = {path: [] for path in paths}
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for repeat in range(options.repeats):
        order = paths[repeat % len(paths) :] + paths[: repeat % len(paths)]
        for path in order:
            logger.info("training repeat %d/%d: %s", repeat + 1, options.repeats, path)
            if path == "plain":
                runs[path].append(run_plain_training(job, tensors, threads))
                continue
            workers = _workers_of(path)
            name = f"bench-{stamp}-w{workers}-r{repeat}"
            runs[path].append(run_ray_training(with_workers(job, workers, name), options.root))

    rows = len(tensors["train"]["x"])
    return {
        "runs": runs,
        "plain_threads": threads,
        "tensor_s": tensor_s,
        "train_rows": rows,
        "val_rows": len(tensors["val"]["x"]),
        "samples": {
            path: samples_per_epoch(rows, _workers_of(path), job.train.batch_size) for path in paths
        },
        "batch_size": job.train.batch_size,
    }


def _workers_of(path: str) -> int:
    return 1 if path == "plain" else int(path.removeprefix("ray-"))


# ---------------------------------------------------------------------------------------------
# Scoring


def scoring_inputs(
    timeline_path: Path, season_counts: Sequence[int], context_features: list[str]
) -> dict[int, dict[str, Any]]:
    """Return, per season count, the latest seasons' games as a Ray dataset and an Arrow table.

    The dataset comes from the scoring job's own load_input, and the table contains the same
    games for the single-process baselines.
    """
    games, _ = load_games(timeline_path, min_observed_s=PATTERN_MINUTES * 60)
    seasons = sorted(set(select_games(games, [SEASON_TYPE], [])["season"].to_pylist()))
    columns = [*ID_COLUMNS, "pattern", "outcome", *context_features]
    inputs = {}
    for count in season_counts:
        if not 1 <= count <= len(seasons):
            raise ValueError(
                f"season count {count} is invalid; {timeline_path} has {len(seasons)} "
                f"{SEASON_TYPE} seasons, so pick counts from 1 to {len(seasons)}"
            )
        chosen = seasons[-count:]
        source = ScoreInput(timeline_path=timeline_path, seasons=chosen, season_types=[SEASON_TYPE])
        dataset, _ = load_input(source, context_features)
        table = select_games(games, [SEASON_TYPE], chosen).select(columns)
        inputs[count] = {"seasons": chosen, "dataset": dataset, "table": table}
    return inputs


def run_plain_scoring(table: pa.Table, checkpoint_dir: Path, threads: int) -> dict[str, float]:
    """Forecast every game in this process with predict_arrays (the model call only)."""
    with torch_threads(threads):
        started = time.perf_counter()
        loaded = load_checkpoint(checkpoint_dir)
        loaded_at, cpu_started = time.perf_counter(), time.process_time()
        predict_arrays(loaded, arrays_to_numpy(table))
        ended, cpu_s = time.perf_counter(), time.process_time() - cpu_started
    return {"wall_s": ended - started, "steady_s": ended - loaded_at, "steady_cpu_s": cpu_s}


def run_inprocess_predictor(
    table: pa.Table, checkpoint_dir: Path, batch_size: int, threads: int
) -> dict[str, float]:
    """Run the Ray Data predictor class in this process, batch by batch, without Ray."""
    with torch_threads(threads):
        started = time.perf_counter()
        predictor = Predictor(str(checkpoint_dir), use_gpu=False, companions=Companions())
        loaded_at, cpu_started = time.perf_counter(), time.process_time()
        arrays = arrays_to_numpy(table)
        for start in range(0, table.num_rows, batch_size):
            predictor({name: values[start : start + batch_size] for name, values in arrays.items()})
        ended, cpu_s = time.perf_counter(), time.process_time() - cpu_started
    return {"wall_s": ended - started, "steady_s": ended - loaded_at, "steady_cpu_s": cpu_s}


def run_ray_scoring(
    dataset: ray.data.Dataset, checkpoint_dir: Path, job: TrainJobConfig, games: int
) -> dict[str, Any]:
    """Stream the scoring job's Ray Data pipeline to the driver and split its wall time.

    Start-up runs until the predictor operator's first task starts (executor, actor process,
    imports and checkpoint load). Once started, the operator's tasks run until the last one
    ends. The rest is handing the output to the driver and shutting the pool down.
    """
    settings = job.score
    with RayProcessMonitor() as monitor:
        started = time.perf_counter()
        scored = score_dataset(
            dataset,
            checkpoint_dir,
            Companions(),
            settings.batch_size,
            settings.concurrency,
            settings.num_gpus_per_actor,
            settings.num_cpus_per_actor,
        )
        rows, blocks = 0, 0
        for batch in scored.iter_batches(batch_size=None, batch_format="pyarrow"):
            rows += batch.num_rows
            blocks += 1
        wall = time.perf_counter() - started
    if rows != games:
        raise RuntimeError(f"Ray Data scoring returned {rows} rows for {games} games")
    operator = predictor_operator_stats(scored)
    actor_seen = monitor.first_titled(PREDICTOR_TITLE)
    return {
        "wall_s": wall,
        "output_blocks": blocks,
        "actor_up_s": actor_seen - started if actor_seen is not None else None,
        "startup_s": operator["earliest_start"] - started,
        "active_s": operator["latest_end"] - operator["earliest_start"],
        "task_wall_s": operator["task_wall_s"],
        "active_cpu_s": operator["task_cpu_s"],
        "tasks": operator["tasks"],
        "actor_peak_rss_mib": monitor.peak_rss_mib(PREDICTOR_TITLE),
    }


def predictor_operator_stats(scored: ray.data.Dataset) -> dict[str, float]:
    """Return when the operator running Predictor started and ended, and its task times.

    Ray Data stamps operator start and end with time.perf_counter() in the worker, which on
    Linux reads the same system-wide monotonic clock as the driver.
    """
    # NOTE: _get_stats_summary is private in Ray 2.60; Dataset.stats() is the same data as text.
    summary = scored._get_stats_summary()
    pending = [summary]
    while pending:
        current = pending.pop()
        for operator in current.operators_stats:
            if "Predictor" in operator.operator_name and operator.earliest_start_time:
                return {
                    "earliest_start": operator.earliest_start_time,
                    "latest_end": operator.latest_end_time,
                    "task_wall_s": operator.wall_time.sum,
                    "task_cpu_s": operator.cpu_time.sum,
                    "tasks": operator.wall_time.count,
                }
        pending.extend(current.parents)
    raise RuntimeError("Ray Data stats name no operator that ran Predictor")


def scoring_benchmark(
    options: BenchmarkOptions, timeline_path: Path, job: TrainJobConfig, checkpoint_dir: Path
) -> dict[str, Any]:
    """Score each season count per repeat with Ray Data and in one process, interleaved."""
    loaded = load_checkpoint(checkpoint_dir)
    features = loaded.model.config.context_features
    threads = max(1, int(job.score.num_cpus_per_actor))
    inputs = scoring_inputs(timeline_path, options.season_counts, features)
    runs: dict[int, dict[str, list]] = {
        count: {"plain": [], "predictor": [], "ray": []} for count in inputs
    }
    for repeat in range(options.repeats):
        for count, item in inputs.items():
            logger.info("scoring repeat %d/%d: %d season(s)", repeat + 1, options.repeats, count)
            table = item["table"]
            runs[count]["plain"].append(run_plain_scoring(table, checkpoint_dir, threads))
            runs[count]["predictor"].append(
                run_inprocess_predictor(table, checkpoint_dir, job.score.batch_size, threads)
            )
            runs[count]["ray"].append(
                run_ray_scoring(item["dataset"], checkpoint_dir, job, table.num_rows)
            )
    return {
        "runs": runs,
        "games": {count: item["table"].num_rows for count, item in inputs.items()},
        "seasons": {count: item["seasons"] for count, item in inputs.items()},
        "threads": threads,
        "batch_size": job.score.batch_size,
        "concurrency": job.score.concurrency,
        "checkpoint": str(checkpoint_dir),
    }


# ---------------------------------------------------------------------------------------------
# The whole run


@contextlib.contextmanager
def scratch_dir(work_dir: Path | None) -> Iterator[Path]:
    """Yield `work_dir`, created if needed, or a temporary folder removed afterwards."""
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        yield Path(work_dir).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="nba-ray-bench-") as folder:
        yield Path(folder)


def run_benchmark(options: BenchmarkOptions) -> dict[str, Any]:
    """Measure data preparation, training and scoring; return every raw measurement."""
    # The 1-minute load average at the start of each phase shows how contended it ran.
    results: dict[str, Any] = {"machine": machine_info(), "memory": {}, "load_1min": {}}
    results["options"] = {
        "repeats": options.repeats,
        "epochs": options.epochs,
        "train_config": str(options.train_config),
        "data_config": str(options.data_config),
    }
    with scratch_dir(options.work_dir) as work:
        data_config = load_config(
            options.root / options.data_config, DataConfig, [f"output_dir={work / 'splits'}"]
        )
        job = training_job(options, work / "splits", work / "runs")
        logger.info("data preparation: %d repeat(s) of prepare_splits", options.repeats)
        results["load_1min"]["prepare"] = os.getloadavg()[0]
        results["prepare"] = [
            time_prepare(data_config, options.root) for _ in range(options.repeats)
        ]
        results["memory"]["driver_after_prepare_mib"] = driver_peak_rss_mib()

        started = time.perf_counter()
        # Loopback only, with the 2 CPUs this benchmark's figures are quoted for.
        ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
        results["ray_init_s"] = time.perf_counter() - started
        try:
            timeline = options.root / data_config.timeline_path
            _measure_on_ray(options, job, work, timeline, results)
        finally:
            ray.shutdown()
    results["load_average_after"] = os.getloadavg()
    return results


def _measure_on_ray(
    options: BenchmarkOptions,
    job: TrainJobConfig,
    work: Path,
    timeline: Path,
    results: dict[str, Any],
) -> None:
    cpus_per_worker = job.scaling.resources_per_worker.get("CPU", 1)
    results["worker_probe"] = probe_worker(cpus_per_worker)
    results["load_1min"]["training"] = os.getloadavg()[0]
    results["training"] = training_benchmark(options, work / "splits", work / "runs")
    results["memory"]["driver_after_training_mib"] = driver_peak_rss_mib()
    # Any trained checkpoint serves: scoring speed does not depend on the weights.
    first_ray = f"ray-{options.worker_counts[0]}"
    checkpoint = results["training"]["runs"][first_ray][-1]["best_checkpoint"]
    results["load_1min"]["scoring"] = os.getloadavg()[0]
    results["scoring"] = scoring_benchmark(options, timeline, job, checkpoint)
    results["memory"]["driver_after_scoring_mib"] = driver_peak_rss_mib()
