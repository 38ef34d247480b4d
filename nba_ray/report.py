"""REPORT.md with PNG figures for a multi-seed folder written by `multiseed.run_multiseed`.

The report reads the folder's `summary.json`, each seed's `metrics.csv` and results table, and
the test split's 48-minute series. Figures are drawn on matplotlib's Agg canvas without pyplot,
so no display and no global figure state are involved.
"""

import csv
import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nba_ray import PATTERN_MINUTES, atomic
from nba_ray.seed_markdown import summary_markdown
from nba_ray.seed_summary import SEED_MEAN, matrix, ordered_forecasters, read_results

REPORT_NAME = "REPORT.md"
MAE_FIGURE = "mae_per_horizon.png"
CURVES_FIGURE = "training_curves.png"
GAMES_FIGURE = "example_games.png"
COVERAGE_FIGURE = "interval_coverage.png"
# One fixed colour per forecaster, so every figure reads the same way.
COLOURS = {
    "model": "tab:blue",
    SEED_MEAN: "navy",
    "persistence": "black",
    "analog": "tab:orange",
    "analog_delta": "tab:brown",
    "ensemble": "tab:green",
}
DPI = 120


def write_report(folder: Path, example_games: int = 4) -> Path:
    """Draw the figures of the multi-seed folder `folder` and write its REPORT.md; return it."""
    if example_games < 1:
        raise ValueError(f"example_games must be at least 1, got {example_games}")
    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text())
    plot_mae(summary, folder / MAE_FIGURE)
    plot_training_curves(summary, folder / CURVES_FIGURE)
    plot_example_games(summary, folder / GAMES_FIGURE, example_games)
    has_intervals = "intervals" in summary
    if has_intervals:
        plot_coverage(summary, folder / COVERAGE_FIGURE)
    path = folder / REPORT_NAME
    atomic.write_text(path, report_markdown(summary, has_intervals))
    return path


def _save(figure: Figure, path: Path) -> None:
    # Written beside the target and renamed, so a failed draw leaves no truncated PNG.
    FigureCanvasAgg(figure)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        figure.savefig(tmp_name, dpi=DPI, format="png")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def plot_mae(summary: dict[str, Any], path: Path) -> None:
    """Plot test MAE per minute (mean ± std over seeds) and each forecaster minus persistence."""
    figure = Figure(figsize=(12, 6), layout="constrained")
    left, right = figure.subplots(1, 2)
    _plot_mae_panel(left, summary)
    _plot_difference_panel(right, summary)
    for axes in (left, right):
        axes.set(xlabel="game minute forecast", xticks=summary["minutes"])
        axes.grid(alpha=0.3)
    _save(figure, path)


def _error_bars(axes, x, y, yerr, name: str, label: str, marker: str = "o") -> None:
    axes.errorbar(x, y, yerr=yerr, marker=marker, capsize=3, color=COLOURS[name], label=label)


def _plot_mae_panel(axes, summary: dict[str, Any]) -> None:
    minutes = np.array(summary["minutes"])
    names = [n for n in ("model", "persistence", "analog", "ensemble") if n in summary["mae"]]
    # Shift each forecaster a little along x so that overlapping error bars stay visible.
    offsets = np.linspace(-0.15, 0.15, len(names))
    for offset, name in zip(offsets, names, strict=True):
        stats = summary["mae"][name]
        _error_bars(axes, minutes + offset, stats["mean"], _array(stats["std"]), name, name)
    axes.set(
        title=f"Test MAE per minute, mean ± std over {summary['n_seeds']} seeds",
        ylabel="MAE (points)",
    )
    axes.legend(loc="best")


def _plot_difference_panel(axes, summary: dict[str, Any]) -> None:
    minutes = np.array(summary["minutes"])
    persistence = np.array(summary["mae"]["persistence"]["mean"])
    # The level analog is left out: it trails persistence by far more than the others differ
    # from it, and its scale would flatten their differences. The left panel shows it.
    names = [n for n in ("model", "analog_delta", "ensemble") if n in summary["mae"]]
    offsets = np.linspace(-0.15, 0.15, len(names) + 1)
    for offset, name in zip(offsets, names, strict=False):
        stats = summary["mae"][name]
        label = f"{name} - persistence"
        if name == "model":
            label += " (mean ± std over seeds)"
        difference = np.array(stats["mean"]) - persistence
        _error_bars(axes, minutes + offset, difference, _array(stats["std"]), name, label)

    # The seed-averaged forecast has one value per minute, with a bootstrap interval.
    comparison = summary[SEED_MEAN]["minus_persistence"]
    difference = np.array(comparison["difference"])
    errors = [
        difference - np.array(comparison["ci_low"]),
        np.array(comparison["ci_high"]) - difference,
    ]
    level = f"{100 * comparison['confidence']:g}%"
    label = f"seed-averaged model - persistence ({level} bootstrap CI)"
    _error_bars(axes, minutes + offsets[-1], difference, errors, SEED_MEAN, label, "s")
    axes.axhline(0.0, color="black", linewidth=1)
    axes.set(
        title="Difference from persistence (below 0: better)",
        ylabel="MAE difference (points)",
    )
    # Below the panel, because the bootstrap bars can reach any part of the plot area.
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize="small")


def _array(values: list) -> np.ndarray | None:
    # A single seed has no spread; null entries become "no error bar".
    array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return None if np.isnan(array).all() else array


def read_metrics(run_dir: Path) -> dict[str, np.ndarray]:
    """Read a training run's metrics.csv as one float array per column."""
    with open(Path(run_dir) / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{run_dir / 'metrics.csv'} has no epochs")
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}


def plot_training_curves(summary: dict[str, Any], path: Path) -> None:
    """Plot train loss and validation MAE per epoch, one line per seed."""
    figure = Figure(figsize=(12, 4.8), layout="constrained")
    loss_axes, mae_axes = figure.subplots(1, 2)
    colours = _seed_colours(len(summary["runs"]))

    # One line per seed, with a star at the epoch whose checkpoint the run kept.
    persistence = None
    for colour, run in zip(colours, summary["runs"], strict=True):
        metrics = read_metrics(Path(run["run_dir"]))
        epochs = metrics["epoch"]
        label = f"seed {run['seed']}"
        loss_axes.plot(epochs, metrics["train/loss"], marker=".", color=colour, label=label)
        mae_axes.plot(epochs, metrics["val/mae"], marker=".", color=colour, label=label)
        best = int(np.argmin(metrics["val/mae"]))
        mae_axes.plot(
            epochs[best],
            metrics["val/mae"][best],
            marker="*",
            markersize=14,
            color=colour,
            markeredgecolor="black",
            linestyle="none",
        )
        persistence = float(metrics["val/persistence_mae"][-1])

    # Persistence on the validation split is the same in every run.
    mae_axes.axhline(
        persistence, color="black", linestyle="--", label=f"persistence ({persistence:.3f})"
    )

    loss = summary["config"]["train"]["loss"]
    loss_axes.set(
        title="Training loss per epoch",
        xlabel="epoch",
        ylabel=f"train/loss ({loss} on the normalized outcome)",
    )
    mae_axes.set(
        title="Validation MAE per epoch (star: best epoch, kept as checkpoint)",
        xlabel="epoch",
        ylabel="val/mae (points)",
    )
    for axes in (loss_axes, mae_axes):
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    _save(figure, path)


def _seed_colours(count: int) -> list:
    from matplotlib import colormaps

    return [colormaps["viridis"](x) for x in np.linspace(0.0, 0.9, max(count, 1))][:count]


def pick_example_games(game_ids: list[str], count: int) -> list[str]:
    """Pick `count` games spread evenly over the (date-sorted) test games, first and last kept."""
    if count >= len(game_ids):
        return list(game_ids)
    indices = np.linspace(0, len(game_ids) - 1, count).round().astype(int)
    return [game_ids[i] for i in indices]


def plot_example_games(summary: dict[str, Any], path: Path, count: int = 4) -> None:
    """Plot observed 48-minute differentials of a few test games with the forecast and 90% band."""
    runs = summary["runs"]
    games = pq.read_table(
        Path(summary["splits_dir"]) / "test",
        columns=["game_id", "game_date", "home_team", "away_team", "timeseries"],
    ).sort_by([("game_date", "ascending"), ("game_id", "ascending")])
    chosen = pick_example_games(games["game_id"].to_pylist(), count)
    games = games.filter(pc.is_in(games["game_id"], value_set=pa.array(chosen)))
    tables = [read_results(Path(run["score_dir"])) for run in runs]
    columns = max(1, min(2, len(chosen)))
    rows = int(np.ceil(len(chosen) / columns))
    figure = Figure(figsize=(6.5 * columns, 4.2 * rows), layout="constrained")
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for axes, game_id in zip(grid, chosen, strict=False):
        game = games.filter(pc.equal(games["game_id"], game_id)).to_pylist()[0]
        _plot_game(axes, game, tables, runs, summary["minutes"])
    for axes in grid[len(chosen) :]:
        axes.set_visible(False)
    figure.suptitle(
        f"Test games: observed differential, with the minute-{summary['minutes'][0]}-"
        f"{summary['minutes'][-1]} forecasts of every seed and the 90% conformal band of "
        f"seed {runs[0]['seed']}"
    )
    _save(figure, path)


def _plot_game(axes, game: dict, tables: list, runs: list[dict], minutes: list[int]) -> None:
    series = np.array(game["timeseries"], dtype=np.float64)
    axes.plot(np.arange(len(series)), series, color="black", linewidth=1.4, label="observed")
    axes.axvspan(minutes[0] - 0.5, minutes[-1] + 0.5, color="grey", alpha=0.12)
    axes.axvline(PATTERN_MINUTES - 0.5, color="grey", linestyle=":")
    for index, table in enumerate(tables):
        row = table.filter(pc.equal(table["game_id"], game["game_id"]))
        forecast = matrix(row, "forecast")[0]
        if index == 0:
            axes.plot(
                minutes,
                forecast,
                marker="o",
                color=COLOURS["model"],
                label=f"forecast, seed {runs[0]['seed']}",
            )
            if "lower_90" in row.column_names:
                axes.fill_between(
                    minutes,
                    matrix(row, "lower_90")[0],
                    matrix(row, "upper_90")[0],
                    color=COLOURS["model"],
                    alpha=0.2,
                    label="90% interval",
                )
        else:
            label = "forecast, other seeds" if index == 1 else None
            axes.plot(
                minutes, forecast, color=COLOURS["model"], linewidth=0.8, alpha=0.6, label=label
            )
    date = game["game_date"]
    date = date.isoformat() if isinstance(date, dt.date) else str(date)
    axes.set(
        title=f"{game['away_team']} at {game['home_team']}, {date}",
        xlabel="game minute",
        ylabel="home - away (points)",
        xlim=(0, len(series) - 1),
    )
    axes.axhline(0.0, color="grey", linewidth=0.6)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")


def plot_coverage(summary: dict[str, Any], path: Path) -> None:
    """Plot conformal coverage per minute against the nominal level, one panel per forecaster."""
    forecasters = ordered_forecasters(summary["intervals"])
    minutes = np.array(summary["minutes"])
    figure = Figure(figsize=(6 * len(forecasters), 4.8), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, len(forecasters), sharey=True))
    for axes, forecaster in zip(panels, forecasters, strict=True):
        levels = summary["intervals"][forecaster]
        colours = [f"C{i}" for i in range(len(levels))]
        for colour, level in zip(colours, sorted(levels, key=float), strict=True):
            coverage = levels[level]["coverage"]
            axes.errorbar(
                minutes,
                coverage["mean"],
                yerr=_array(coverage["std"]),
                marker="o",
                capsize=3,
                color=colour,
                label=f"{float(level):.0%} interval",
            )
            axes.axhline(float(level), color=colour, linestyle="--", linewidth=1)
        axes.set(
            title=f"{forecaster}: test coverage (dashed: nominal)",
            xlabel="game minute forecast",
            ylabel="share of outcomes inside the interval",
            xticks=minutes,
        )
        axes.grid(alpha=0.3)

    # One legend under both panels, so that it never hides a point.
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    _save(figure, path)


def report_markdown(summary: dict[str, Any], has_intervals: bool) -> str:
    """Return REPORT.md: what was run, the across-seed tables and the figures with captions."""
    config = summary["config"]
    n_seeds = summary["n_seeds"]
    lines = [
        f"# Multi-seed report: {config['run']['name']}",
        "",
        f"- Seeds: {', '.join(str(s) for s in summary['seeds'])} ({n_seeds} runs of one config)",
        f"- Test games: {summary['n_games']} (split folder `{summary['splits_dir']}/test`)",
        f"- Model: LSTM hidden {config['model']['hidden_size']}, {config['model']['num_layers']} "
        f"layers, target {config['model']['target']}; up to {config['train']['max_epochs']} "
        f"epochs, patience {config['train']['patience_epochs']}, "
        f"{config['scaling']['num_workers']} worker(s) per run",
        "",
        "## Results",
        "",
        summary_markdown(summary),
        "## Figures",
        "",
        f"![Test MAE per minute]({MAE_FIGURE})",
        "",
        "Left: test MAE per forecast minute; error bars are ± one standard deviation across "
        "seeds. Right: MAE of the model, the delta analog and the ensemble minus that of "
        "persistence on the same games. The seed-averaged model carries its paired bootstrap "
        "interval.",
        "",
        f"![Training curves]({CURVES_FIGURE})",
        "",
        "Training loss and validation MAE per epoch for every seed, from each run's "
        "metrics.csv; the dashed line is persistence on the validation split.",
        "",
        f"![Example test games]({GAMES_FIGURE})",
        "",
        "Test games picked evenly over the test dates. The shaded band marks minutes "
        f"{summary['minutes'][0]}-{summary['minutes'][-1]}; the dotted line separates the "
        "18 observed minutes the model reads from the minutes it forecasts.",
        "",
    ]
    if has_intervals:
        lines += [
            f"![Interval coverage]({COVERAGE_FIGURE})",
            "",
            "Conformal interval coverage on the test games per minute (mean ± std across "
            "seeds) against the nominal level; intervals were calibrated on the cal split.",
            "",
        ]
    return "\n".join(lines)
