"""Statistics and the Markdown report for the measurements of `nba_ray.benchmark`.

Every figure is the median over repeats with the min-max range in brackets. Ratios are taken
within one repeat, Ray over plain, and then summarized the same way.
"""

import json
import statistics
import textwrap
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

# Targets the report checks; ratios are Ray time over plain time.
MAX_EPOCH_RATIO = 1.3
MAX_SCORING_RATIO = 2.0
MIN_LINEAR_R2 = 0.99
MAX_PREPARE_S = 10.0


def spread(values: Sequence[float]) -> dict[str, float]:
    """Return the median, minimum and maximum of repeated measurements."""
    if not values:
        raise ValueError("spread needs at least one measurement, got none")
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def format_spread(values: Sequence[float | None], digits: int = 2) -> str:
    """Format measurements as `median (min-max)`; None entries are skipped, all None is n/a."""
    known = [value for value in values if value is not None]
    if not known:
        return "n/a"
    summary = spread(known)
    low, high = f"{summary['min']:.{digits}f}", f"{summary['max']:.{digits}f}"
    return f"{summary['median']:.{digits}f} ({low}-{high})"


def linear_fit(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Fit y = intercept + slope * x by least squares; r2 is the coefficient of determination."""
    if len(x) != len(y) or len(set(x)) < 2:
        raise ValueError(f"a linear fit needs two or more distinct x values, got x={list(x)}")
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    slope, intercept = np.polyfit(xs, ys, 1)
    residual = float(np.sum((ys - (intercept + slope * xs)) ** 2))
    total = float(np.sum((ys - ys.mean()) ** 2))
    r2 = 1.0 - residual / total if total > 0 else 1.0
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2}


def ratios(
    numerators: Sequence[float | None], denominators: Sequence[float | None]
) -> list[float | None]:
    """Divide measurements paired by repeat; a pair with a missing value gives None."""
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} numerators but {len(denominators)} denominators")
    return [
        None if a is None or b is None else a / b
        for a, b in zip(numerators, denominators, strict=True)
    ]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Return a GitHub Markdown table; every row must have one cell per header."""
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {list(row)} has {len(row)} cells for {len(headers)} headers")
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(value: float, limit: float, below: bool = True) -> str:
    """Return `yes` when `value` is on the right side of `limit`, else `no`."""
    return "yes" if (value <= limit if below else value >= limit) else "no"


# ---------------------------------------------------------------------------------------------
# Figures derived from the raw measurements


def epoch_times(runs: list[dict], key: str = "epoch_seconds") -> list[float | None]:
    """Median over the epochs of each run of `key`, or None for a run that has no values."""
    return [statistics.median(run[key]) if run.get(key) else None for run in runs]


def _training_figures(training: dict, epochs: int) -> dict[str, dict[str, list[float]]]:
    runs = training["runs"]
    plain_epoch, plain_wall = epoch_times(runs["plain"]), [r["wall_s"] for r in runs["plain"]]
    plain_cpu = epoch_times(runs["plain"], "epoch_cpu_s")
    figures = {}
    for path, path_runs in runs.items():
        samples = training["samples"][path]
        epoch = epoch_times(path_runs)
        wall = [run["wall_s"] for run in path_runs]
        cpu = epoch_times(path_runs, "epoch_cpu_s")
        figures[path] = {
            "epoch_s": epoch,
            "epoch_samples_per_s": [samples / value for value in epoch],
            "epoch_ratio": ratios(epoch, plain_epoch),
            "epoch_cpu_s": cpu,
            "epoch_cpu_ratio": ratios(cpu, plain_cpu),
            "wall_s": wall,
            "wall_samples_per_s": [samples * epochs / value for value in wall],
            "wall_ratio": ratios(wall, plain_wall),
        }
    return figures


def _scoring_figures(scoring: dict) -> dict[int, dict[str, list[float]]]:
    figures = {}
    for count, paths in scoring["runs"].items():
        plain = [run["steady_s"] for run in paths["plain"]]
        predictor = [run["steady_s"] for run in paths["predictor"]]
        active = [run["active_s"] for run in paths["ray"]]
        wall = [run["wall_s"] for run in paths["ray"]]
        plain_cpu = [run["steady_cpu_s"] for run in paths["plain"]]
        active_cpu = [run["active_cpu_s"] for run in paths["ray"]]
        figures[count] = {
            "plain_cpu_s": plain_cpu,
            "predictor_cpu_s": [run["steady_cpu_s"] for run in paths["predictor"]],
            "ray_active_cpu_s": active_cpu,
            "active_cpu_ratio": ratios(active_cpu, plain_cpu),
            "plain_wall_s": [run["wall_s"] for run in paths["plain"]],
            "plain_s": plain,
            "predictor_s": predictor,
            "ray_wall_s": wall,
            "ray_startup_s": [run["startup_s"] for run in paths["ray"]],
            "ray_actor_up_s": [run["actor_up_s"] for run in paths["ray"]],
            "ray_active_s": active,
            "wall_ratio": ratios(wall, [run["wall_s"] for run in paths["plain"]]),
            "active_ratio": ratios(active, plain),
            "active_predictor_ratio": ratios(active, predictor),
        }
    return figures


def _median(values: Sequence[float | None]) -> float:
    return spread([value for value in values if value is not None])["median"]


# ---------------------------------------------------------------------------------------------
# Report sections


def load_raw_results(path: Path) -> dict:
    """Read measurements saved as JSON, restoring the integer season-count keys of scoring."""
    results = json.loads(Path(path).read_text())
    scoring = results["scoring"]
    for key in ("runs", "games", "seasons"):
        scoring[key] = {int(count): value for count, value in scoring[key].items()}
    return results


def render_report(results: dict) -> str:
    """Return the whole BENCHMARKS.md text for one benchmark run."""
    options = SimpleNamespace(**results["options"])
    command = results.get("command", "python jobs/benchmark.py")
    training = _training_figures(results["training"], options.epochs)
    scoring = _scoring_figures(results["scoring"])
    sections = [
        _header(results, options, command),
        _goals(results, training, scoring),
        _training_section(results, options, training),
        _scoring_section(results, scoring),
        _prepare_section(results),
        _memory_section(results),
        _findings(results, training, scoring),
    ]
    return wrap_prose("\n\n".join(sections)) + "\n"


def wrap_prose(text: str, width: int = 100) -> str:
    """Wrap Markdown paragraphs and list items at `width`; tables and code blocks stay as is."""
    lines, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or len(line) <= width or line.startswith(("|", "```")):
            lines.append(line)
            continue
        indent = "  " if line.startswith("- ") else ""
        lines.extend(
            textwrap.wrap(
                line,
                width=width,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines)


def _header(results: dict, options: Any, command: str) -> str:
    machine = results["machine"]
    versions = machine["versions"]
    before = ", ".join(f"{value:.2f}" for value in machine["load_average"])
    after = ", ".join(f"{value:.2f}" for value in results["load_average_after"])
    phases = ", ".join(f"{name} {value:.1f}" for name, value in results["load_1min"].items())
    rows = [
        ("CPU", f"{machine['cpu_model']}, {machine['logical_cpus']} logical CPUs"),
        ("Memory", f"{machine['memory_gib']:.1f} GiB"),
        ("Platform", versions["platform"]),
        ("Python", versions["python"]),
        ("Packages", ", ".join(f"{k} {versions[k]}" for k in ("torch", "ray", "numpy", "pyarrow"))),
        ("Ray", "local instance started by the benchmark, 2 CPUs, no dashboard"),
        ("Load average before (1, 5, 15 min)", before),
        ("Load average after (1, 5, 15 min)", after),
        ("1-min load at the start of each phase", phases),
    ]
    return "\n".join(
        [
            "# Benchmarks",
            "",
            f"Generated on {machine['date']} ({options.repeats} repeats, {options.epochs} "
            "training epochs per run) by:",
            "",
            "```",
            command,
            "```",
            "",
            "Other jobs share this machine, so absolute times drift with its load. Each Ray "
            "figure is therefore compared with a single-process baseline measured in the same "
            "repeat, and every figure is the median over repeats with the min-max range in "
            "brackets.",
            "",
            markdown_table(["Machine", ""], rows),
        ]
    )


def _goals(results: dict, training: dict, scoring: dict) -> str:
    largest = max(scoring)
    first_ray = next(path for path in training if path != "plain")
    games = results["scoring"]["games"][largest]
    prepare = [run["seconds"] for run in results["prepare"]]
    prepare_cpu = [run["cpu_s"] for run in results["prepare"]]
    fit_wall = _fit(results["scoring"], scoring, "ray_active_s")
    fit_cpu = _fit(results["scoring"], scoring, "ray_active_cpu_s")
    rows = [
        _goal_row(
            f"Training time per epoch, {_path_name(first_ray)} over plain loop",
            f"<= {MAX_EPOCH_RATIO}x",
            training[first_ray]["epoch_ratio"],
            training[first_ray]["epoch_cpu_ratio"],
            MAX_EPOCH_RATIO,
        ),
        _goal_row(
            f"Scoring {games:,} games once started, Ray Data over plain PyTorch",
            f"<= {MAX_SCORING_RATIO}x",
            scoring[largest]["active_ratio"],
            scoring[largest]["active_cpu_ratio"],
            MAX_SCORING_RATIO,
        ),
        (
            "Scoring time once started linear in games (r² of a straight line through the "
            "medians per season count, this report's criterion)",
            f">= {MIN_LINEAR_R2}",
            f"wall {fit_wall['r2']:.4f}; CPU {fit_cpu['r2']:.4f}",
            f"wall {verdict(fit_wall['r2'], MIN_LINEAR_R2, below=False)}, "
            f"CPU {verdict(fit_cpu['r2'], MIN_LINEAR_R2, below=False)}",
        ),
        (
            "Data preparation, prepare_splits on the whole timeline",
            f"< {MAX_PREPARE_S:.0f} s",
            f"wall {format_spread(prepare)} s; CPU {format_spread(prepare_cpu)} s",
            f"wall {verdict(_median(prepare), MAX_PREPARE_S)}, "
            f"CPU {verdict(_median(prepare_cpu), MAX_PREPARE_S)}",
        ),
    ]
    return "\n".join(
        [
            "## Goals",
            "",
            "Ratios are Ray's time over the plain baseline's time in the same repeat. Each goal "
            "is judged on wall time, as stated, and on CPU time. CPU time counts only the work "
            "of the processes involved, so it changes little when other jobs load the machine, "
            "while wall time also counts waiting for a CPU.",
            "",
            markdown_table(["Goal", "Target", "Measured", "Met"], rows),
        ]
    )


def _goal_row(
    goal: str, target: str, wall: list, cpu: list, limit: float
) -> tuple[str, str, str, str]:
    known_cpu = [value for value in cpu if value is not None]
    cpu_verdict = verdict(_median(known_cpu), limit) if known_cpu else "n/a"
    return (
        goal,
        target,
        f"wall {format_spread(wall)}x; CPU {format_spread(cpu)}x",
        f"wall {verdict(_median(wall), limit)}, CPU {cpu_verdict}",
    )


def _training_section(results: dict, options: Any, figures: dict) -> str:
    training = results["training"]
    probe = results["worker_probe"]
    rows = [
        (
            _path_name(path),
            format_spread(values["epoch_s"]),
            format_spread(values["epoch_samples_per_s"], 0),
            f"{format_spread(values['epoch_ratio'])}x",
            format_spread(values["epoch_cpu_s"]),
            f"{format_spread(values['epoch_cpu_ratio'])}x",
            format_spread(values["wall_s"], 1),
            format_spread(values["wall_samples_per_s"], 0),
            f"{format_spread(values['wall_ratio'])}x",
        )
        for path, values in figures.items()
    ]
    headers = [
        "Path",
        "Epoch (s)",
        "Samples/s per epoch",
        "Epoch vs plain",
        "Epoch CPU (s)",
        "Epoch CPU vs plain",
        "Wall (s)",
        "Samples/s end to end",
        "Wall vs plain",
    ]
    lines = [
        "## Training",
        "",
        f"Default config `{options.train_config}` for {options.epochs} epochs, early stopping "
        f"off. The train split has {training['train_rows']:,} games, so one epoch trains on "
        f"{training['samples']['plain']:,} samples in batches of {training['batch_size']}; every "
        f"epoch also validates on all {training['val_rows']:,} val games. Epoch time is the "
        "median epoch of a run as the training loop measures it (train and validate). Epoch "
        "CPU is the CPU seconds of the plain process per epoch, and for Ray the CPU seconds of "
        "all Train worker processes between two consecutive checkpoint reports (one epoch and "
        "one report, from the second epoch on, sampled every 0.25 s). Wall is `trainer.fit()` "
        "for Ray and the whole loop for plain; neither includes building the datasets.",
        "",
        f"The plain loop calls `train_epoch` and `predict_points` from `nba_ray.training` on the "
        f"same tensors, seed and per-epoch permutation as a Ray worker, with "
        f"`torch.set_num_threads({training['plain_threads']})`, the CPUs of one Ray worker. A Ray "
        f"task with that many CPUs sees OMP_NUM_THREADS={probe['omp_num_threads']} and "
        f"{probe['torch_threads']} torch thread(s). {_loss_check(training)}",
        "",
        markdown_table(headers, rows),
        "",
        _startup_table(training, options.epochs),
    ]
    return "\n".join(lines)


def _workers_of(path: str) -> int:
    return 1 if path == "plain" else int(path.removeprefix("ray-"))


def _path_name(path: str) -> str:
    if path == "plain":
        return "plain PyTorch, 1 process"
    workers = _workers_of(path)
    return f"Ray TorchTrainer, {workers} worker{'s' if workers > 1 else ''}"


def _loss_check(training: dict) -> str:
    runs = training["runs"]
    if "ray-1" not in runs:
        return ""
    pairs = zip(runs["plain"], runs["ray-1"], strict=True)
    gaps = [
        abs(plain - ray)
        for plain_run, ray_run in pairs
        for plain, ray in zip(plain_run["train_losses"], ray_run["train_losses"], strict=True)
    ]
    if max(gaps) == 0:
        return (
            "Every epoch's training loss of the plain loop equals that of Ray with 1 worker bit "
            "for bit in every repeat, so both run the same computation."
        )
    return (
        "NOTE: epoch training losses of plain and Ray with 1 worker differ by up to "
        f"{max(gaps):.2e}, so the plain loop no longer repeats train_loop_per_worker exactly; "
        "compare how the two seed each epoch."
    )


def _startup_table(training: dict, epochs: int) -> str:
    rows = []
    for path, runs in training["runs"].items():
        if path == "plain":
            continue
        overhead = [run["wall_s"] - sum(run["epoch_seconds"]) for run in runs]
        rows.append(
            (
                _path_name(path),
                format_spread([run["build_s"] for run in runs], 1),
                format_spread(overhead, 1),
                format_spread([run["workers_up_s"] for run in runs], 1),
                format_spread([run["startup_s"] for run in runs], 1),
                format_spread([run["report_s"] for run in runs], 2),
                format_spread([run["shutdown_s"] for run in runs], 1),
            )
        )
    headers = [
        "Path",
        "build_trainer (s)",
        "Fit wall minus epochs (s)",
        "Workers up (s)",
        "Before first epoch (s)",
        "Report per epoch (s)",
        "After last report (s)",
    ]
    return "\n".join(
        [
            "### Ray Train fixed cost",
            "",
            "`build_trainer` fits the normalization and materializes train and val with Ray "
            "Data on the driver, before `fit()`. Fit wall minus the epochs' own seconds is what "
            "Ray adds around the loop. It splits into the time before the first epoch starts "
            "(controller, worker actors, process group, dataset shards and tensors on the "
            "worker), one checkpoint report per epoch, and shutdown after the last report. "
            "Workers up is when a process first carries the Train worker title. The splits come "
            "from sampling processes and the run folder every 0.25 s, so each is good to about "
            "that.",
            "",
            markdown_table(headers, rows),
        ]
    )


def _fit(scoring_results: dict, figures: dict, key: str) -> dict[str, float]:
    counts = sorted(figures)
    games = [scoring_results["games"][count] for count in counts]
    return linear_fit(games, [_median(figures[count][key]) for count in counts])


def _scoring_section(results: dict, figures: dict) -> str:
    scoring = results["scoring"]
    rows = []
    for count in sorted(figures):
        values, games = figures[count], scoring["games"][count]
        seasons = scoring["seasons"][count]
        rows.append(
            (
                f"{count} ({seasons[0]} to {seasons[-1]})",
                f"{games:,}",
                format_spread(values["plain_s"], 3),
                format_spread(values["predictor_s"], 3),
                format_spread(values["ray_wall_s"], 1),
                format_spread(values["ray_actor_up_s"], 1),
                format_spread(values["ray_startup_s"], 1),
                format_spread(values["ray_active_s"], 3),
                f"{format_spread(values['wall_ratio'], 1)}x",
                f"{format_spread(values['active_ratio'])}x",
                f"{format_spread(values['active_cpu_ratio'])}x",
                f"{format_spread(values['active_predictor_ratio'])}x",
                f"{_median(values['ray_active_s']) / games * 1e3:.3f}",
            )
        )
    headers = [
        "Seasons",
        "Games",
        "Plain (s)",
        "In-process Predictor (s)",
        "Ray Data wall (s)",
        "Actor up (s)",
        "Ray start-up (s)",
        "Ray once started (s)",
        "Wall vs plain",
        "Once started vs plain",
        "Once started CPU vs plain",
        "Once started vs Predictor",
        "Ray ms per game once started",
    ]
    return "\n".join(
        [
            "## Scoring",
            "",
            _scoring_intro(results),
            "",
            markdown_table(headers, rows),
            "",
            _scoring_fits(scoring, figures),
        ]
    )


def _scoring_intro(results: dict) -> str:
    scoring = results["scoring"]
    return (
        f"Regular-season games of the latest 1 to {max(scoring['games'])} seasons, scored with "
        f"the checkpoint of a benchmark training run. Ray Data runs the scoring job's pipeline "
        f"(`load_input`, then `score_dataset` with batch size {scoring['batch_size']}, "
        f"{scoring['concurrency']} predictor actor(s)) and streams every row back to the "
        "driver. Plain is `predict_arrays` on all games at once in the driver, the model call "
        "only; in-process Predictor calls the Ray Data predictor class batch by batch in the "
        "driver, which adds the persistence forecast, errors and identity columns. Both use "
        f"{scoring['threads']} torch thread(s), the CPUs of one predictor actor, and exclude "
        "the checkpoint load (a few ms). No path fits the analog, ensemble or interval "
        "companions. Ray start-up runs from `score_dataset` until the predictor operator's "
        "first task starts (executor, actor process, imports, checkpoint load), and actor up "
        "is when the actor's process first carries its Ray Data title. Once started runs from "
        "the first task's start until the last task's end, as Ray Data's own stats record them; "
        "its CPU time is the tasks' CPU seconds from the same stats."
    )


def _scoring_fits(scoring: dict, figures: dict) -> str:
    lines = ["Time against games, fitted over the season counts (medians):", ""]
    for label, key in (
        ("Ray Data once started", "ray_active_s"),
        ("Ray Data once started, CPU", "ray_active_cpu_s"),
        ("Ray Data wall", "ray_wall_s"),
        ("Plain predict_arrays", "plain_s"),
        ("Plain predict_arrays, CPU", "plain_cpu_s"),
        ("In-process Predictor", "predictor_s"),
    ):
        fit = _fit(scoring, figures, key)
        lines.append(
            f"- {label}: {fit['intercept']:.3f} s + {fit['slope'] * 1e3:.4f} ms per game "
            f"(r² {fit['r2']:.4f})"
        )
    largest = max(figures)
    games = scoring["games"][largest]
    values = figures[largest]
    rates = {
        key: games / _median(values[key])
        for key in ("plain_s", "predictor_s", "ray_active_s", "ray_wall_s")
    }
    lines += [
        "",
        f"Games per second on all {games:,} games: plain {rates['plain_s']:,.0f}, in-process "
        f"Predictor {rates['predictor_s']:,.0f}, Ray Data once started "
        f"{rates['ray_active_s']:,.0f}, Ray Data wall {rates['ray_wall_s']:,.0f}.",
    ]
    return "\n".join(lines)


def _prepare_section(results: dict) -> str:
    runs = results["prepare"]
    games = runs[0]["games"]
    split_text = ", ".join(f"{name} {count:,}" for name, count in games.items())
    return "\n".join(
        [
            "## Data preparation",
            "",
            "`prepare_splits` with `configs/data.yaml`: read the whole timeline, build the "
            "per-minute series and context features of every game, keep regular-season games "
            f"and write the chronological splits ({split_text}; {runs[0]['skipped']} skipped). "
            f"Wall time: {format_spread([run['seconds'] for run in runs])} s; CPU time of the "
            f"process: {format_spread([run['cpu_s'] for run in runs])} s, which changes little "
            "with the machine's load.",
        ]
    )


def _memory_section(results: dict) -> str:
    memory = results["memory"]
    rows = [
        ("Driver, after data preparation", f"{memory['driver_after_prepare_mib']:.0f}"),
        ("Driver, after training", f"{memory['driver_after_training_mib']:.0f}"),
        ("Driver, after scoring (whole run)", f"{memory['driver_after_scoring_mib']:.0f}"),
    ]
    for path, runs in results["training"]["runs"].items():
        if path != "plain":
            peaks = [run["worker_peak_rss_mib"] for run in runs]
            workers = path.removeprefix("ray-")
            rows.append(
                (f"One Ray Train worker, in {workers}-worker runs", format_spread(peaks, 0))
            )
    actor = [
        run["actor_peak_rss_mib"]
        for paths in results["scoring"]["runs"].values()
        for run in paths["ray"]
    ]
    rows.append(("Ray Data predictor actor", format_spread(actor, 0)))
    rows.append(
        ("Ray task after importing torch", f"{results['worker_probe']['peak_rss_mib']:.0f}")
    )
    return "\n".join(
        [
            "## Peak memory",
            "",
            "Peak resident set size in MiB. The driver's is `ru_maxrss`, which only grows, so "
            "each row includes the phases before it. Ray workers' are the kernel's VmHWM, "
            "sampled from /proc every 0.25 s while each run lasts.",
            "",
            markdown_table(["Process", "Peak RSS (MiB)"], rows),
        ]
    )


def _findings(results: dict, training: dict, scoring: dict) -> str:
    lines = ["## Findings", ""]
    lines += _training_findings(results["training"], training)
    lines += _scoring_findings(results["scoring"], scoring)
    lines += _prepare_findings(results)
    return "\n".join(lines)


def _training_findings(raw: dict, figures: dict) -> list[str]:
    lines = []
    for path, runs in raw["runs"].items():
        if path == "plain":
            continue
        startup = _median([run["startup_s"] for run in runs])
        epoch = _median(figures[path]["epoch_s"])
        wall = _median(figures[path]["wall_s"])
        lines.append(
            f"- {_path_name(path)}: Ray Train spends about {startup:.1f} s before the first "
            f"epoch, as long as {startup / epoch:.1f} epochs of {epoch:.2f} s, and "
            f"{100 * startup / wall:.0f}% of the fit wall time at this epoch count. Per epoch "
            f"it takes {format_spread(figures[path]['epoch_ratio'])}x the plain loop's wall "
            f"time and {format_spread(figures[path]['epoch_cpu_ratio'])}x its CPU time."
        )
    for path in raw["runs"]:
        cpu_ratio = figures[path]["epoch_cpu_ratio"]
        if _workers_of(path) > 1 and any(cpu_ratio) and _median(cpu_ratio) > 1:
            lines.append(
                f"- With {_workers_of(path)} workers the epoch CPU time of all workers is "
                f"{_median(cpu_ratio):.2f}x the plain loop's. Each step trains a smaller batch "
                "per worker and all-reduces the gradients, and every worker validates the "
                "whole val split."
            )
    cpu_share = [run["cpu_s"] / run["wall_s"] for run in raw["runs"]["plain"]]
    lines.append(
        "- The plain loop's CPU time over its wall time was "
        f"{format_spread(cpu_share)}. Below 1, the loop waited for a CPU that other processes "
        "held; a Ray worker waits the same way, so per-epoch wall-time ratios move with the "
        "load of the moment, while CPU-time ratios show what Ray itself adds."
    )
    return lines


def _scoring_findings(raw: dict, figures: dict) -> list[str]:
    largest = max(figures)
    values, games = figures[largest], raw["games"][largest]
    startup = _median(values["ray_startup_s"])
    active = _median(values["ray_active_s"])
    lines = [
        f"- Scoring all {games:,} games: Ray Data's start-up of {startup:.1f} s is "
        f"{startup / active:.0f} times the {active:.2f} s its predictor then needs, so the "
        f"job's wall time is {format_spread(values['wall_ratio'], 1)}x plain PyTorch. Once "
        f"started it runs at {format_spread(values['active_ratio'])}x the plain model call and "
        f"{format_spread(values['active_predictor_ratio'])}x the same predictor class run in "
        "one process.",
    ]
    fit_wall = _fit(raw, figures, "ray_active_s")
    fit_cpu = _fit(raw, figures, "ray_active_cpu_s")
    lines.append(
        f"- Once started, Ray Data uses {fit_cpu['slope'] * 1e3:.4f} ms of CPU per game plus "
        f"{fit_cpu['intercept']:.3f} s per run (r² {fit_cpu['r2']:.4f} over "
        f"{len(figures)} season counts). The same fit on wall time has r² "
        f"{fit_wall['r2']:.4f}; the gap is time spent waiting for a CPU, which varies between "
        "runs with the load of other jobs."
    )
    tasks = max(run["tasks"] for run in raw["runs"][largest]["ray"])
    if tasks == 1 and games > raw["batch_size"]:
        lines.append(
            f"- The predictor operator ran 1 task for all {games:,} games, because `load_input` "
            "hands Ray Data the games as one Arrow block. With more than one predictor actor "
            "(`score.concurrency`), all but one would stay idle."
        )
    return lines


def _prepare_findings(results: dict) -> list[str]:
    wall = _median([run["seconds"] for run in results["prepare"]])
    cpu = _median([run["cpu_s"] for run in results["prepare"]])
    return [
        f"- Data preparation needs {cpu:.1f} s of CPU and took {wall:.1f} s of wall time; the "
        f"difference of {wall - cpu:.1f} s is time spent waiting for a CPU or for the disk.",
    ]
