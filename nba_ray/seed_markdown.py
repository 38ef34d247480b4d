"""Markdown tables of an across-seed summary built by `seed_summary.summarize_seeds`."""

from typing import Any

from nba_ray.seed_summary import INTERVAL_METHOD, SEED_MEAN, ordered_forecasters


def _cell(stats: dict[str, Any], index: int | None, digits: int = 3) -> str:
    mean = stats["mean"] if index is None else stats["mean"][index]
    std = stats["std"] if index is None else stats["std"][index]
    if std is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _interval(low: float | None, high: float | None, digits: int = 3) -> str:
    if low is None or high is None:
        return "n/a"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def summary_markdown(summary: dict[str, Any]) -> str:
    """Render an across-seed summary as Markdown tables with captions.

    The tables are test MAE, the seed-averaged model against persistence, interval coverage
    when the seeds were scored with intervals, and the per-seed runs when listed.
    """
    level = f"{100 * summary['confidence']:g}%"
    lines = _mae_lines(summary, level)
    lines += _comparison_lines(summary, level)
    if "intervals" in summary:
        lines += _interval_lines(summary)
    if "runs" in summary:
        lines += _run_lines(summary)
    return "\n".join(lines) + "\n"


def _mae_lines(summary: dict[str, Any], level: str) -> list[str]:
    names = [n for n in summary["forecasters"] if n != "model"]
    header = ["minute", "model", f"model {level} CI", "seed-averaged model", *names]
    lines = [
        f"### Test MAE across {summary['n_seeds']} seeds ({_seed_list(summary['seeds'])})",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---:"] * len(header)) + " |",
    ]

    # One row per forecast minute, then the average over minutes.
    seed_mean = summary[SEED_MEAN]
    rows = [(str(m), i) for i, m in enumerate(summary["minutes"])] + [("average", None)]
    for label, index in rows:
        if index is None:
            source, seed_mean_value = summary["mae_average"], seed_mean["mae_average"]
            low, high = source["model"]["ci_low"], source["model"]["ci_high"]
        else:
            source, seed_mean_value = summary["mae"], seed_mean["mae"][index]
            low, high = source["model"]["ci_low"][index], source["model"]["ci_high"][index]
        cells = [label, _cell(source["model"], index), _interval(low, high)]
        cells.append(f"{seed_mean_value:.3f}")
        cells += [_cell(source[name], index) for name in names]
        lines.append("| " + " | ".join(cells) + " |")

    lines += [
        "",
        f"MAE in points of the home-minus-away differential over {summary['n_games']} test "
        "games, as mean ± sample standard deviation (ddof=1) across seeds. The model "
        f"{level} CI is a {INTERVAL_METHOD}. Persistence does not depend on the seed. The "
        "seed-averaged model is the forecast averaged over the seeds' models, game by game.",
        "",
    ]
    return lines


def _seed_list(seeds: list[int]) -> str:
    return "seed " + ", ".join(str(s) for s in seeds)


def _comparison_lines(summary: dict[str, Any], level: str) -> list[str]:
    comparison = summary[SEED_MEAN]["minus_persistence"]
    lines = [
        "### Seed-averaged model minus persistence",
        "",
        f"| minute | difference | {level} CI |",
        "| ---: | ---: | :---: |",
    ]
    for i, minute in enumerate(summary["minutes"]):
        lines.append(
            f"| {minute} | {comparison['difference'][i]:.3f} | "
            f"{_interval(comparison['ci_low'][i], comparison['ci_high'][i])} |"
        )
    lines += [
        f"| average | {comparison['average']:.3f} | "
        f"{_interval(comparison['average_ci_low'], comparison['average_ci_high'])} |",
        "",
        f"Paired bootstrap over the {comparison['n_games']} test games "
        f"({comparison['samples']} resamples, generator seed {comparison['seed']}). Negative "
        "differences favour the model.",
        "",
    ]
    return lines


def _interval_lines(summary: dict[str, Any]) -> list[str]:
    lines = [
        "### Conformal intervals on the test games",
        "",
        "| forecaster | level | coverage | coverage per minute 18-23 | mean width |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for forecaster in ordered_forecasters(summary["intervals"]):
        levels = summary["intervals"][forecaster]
        for level in sorted(levels, key=float):
            stats = levels[level]
            per_minute = " ".join(f"{v:.3f}" for v in stats["coverage"]["mean"])
            lines.append(
                f"| {forecaster} | {float(level):.0%} | {_cell(stats['coverage_average'], None)} "
                f"| {per_minute} | {_cell(stats['mean_width_average'], None, 2)} |"
            )
    lines += [
        "",
        "Coverage is the share of test outcomes inside the interval, averaged over minutes "
        "18-23; width is in points. Both are mean ± standard deviation across seeds; the "
        "per-minute coverage is the mean across seeds.",
        "",
    ]
    return lines


def _run_lines(summary: dict[str, Any]) -> list[str]:
    lines = [
        "### Runs",
        "",
        "| seed | best epoch | epochs run | best val MAE | test MAE (model) | this job |",
        "| ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    test_mae = summary["mae_average"]["model"]["per_seed"]
    for run, mae in zip(summary["runs"], test_mae, strict=True):
        lines.append(
            f"| {run['seed']} | {run['best_epoch']} | {run['epochs_run']} | "
            f"{run['best_val_mae']:.3f} | {mae:.3f} | {run['action']} |"
        )
    return lines + [""]
