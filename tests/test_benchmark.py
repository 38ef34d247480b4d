"""Pure helpers of the benchmark: statistics, fits, tables and /proc parsing. No timings."""

import json
import os
import subprocess
import sys

import pytest

from nba_ray.benchmark import (
    descendant_pids,
    peak_rss_bytes,
    process_title,
    samples_per_epoch,
    split_fit_time,
)
from nba_ray.benchmark_report import (
    format_spread,
    linear_fit,
    load_raw_results,
    markdown_table,
    ratios,
    render_report,
    spread,
    verdict,
    wrap_prose,
)


def test_spread_odd_count():
    assert spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0}


def test_spread_even_count_median():
    assert spread([4.0, 1.0, 2.0, 3.0])["median"] == 2.5


def test_spread_rejects_empty():
    with pytest.raises(ValueError, match="at least one"):
        spread([])


def test_format_spread_median_and_range():
    assert format_spread([1.234, 1.5, 1.1]) == "1.23 (1.10-1.50)"


def test_format_spread_digits():
    assert format_spread([10.0, 12.0, 20.0], digits=0) == "12 (10-20)"


def test_format_spread_skips_missing():
    assert format_spread([None, 2.0, 4.0], digits=1) == "3.0 (2.0-4.0)"


def test_format_spread_all_missing():
    assert format_spread([None, None]) == "n/a"


def test_linear_fit_exact_line():
    fit = linear_fit([1230, 4913, 14420], [2.0 + 0.001 * g for g in (1230, 4913, 14420)])
    assert fit["slope"] == pytest.approx(0.001)
    assert fit["intercept"] == pytest.approx(2.0)
    assert fit["r2"] == pytest.approx(1.0)


def test_linear_fit_poor_fit_low_r2():
    fit = linear_fit([1.0, 2.0, 3.0, 4.0], [1.0, 4.0, 1.0, 4.0])
    assert fit["r2"] < 0.5


def test_linear_fit_rejects_one_x():
    with pytest.raises(ValueError, match="distinct x"):
        linear_fit([5.0, 5.0], [1.0, 2.0])


def test_ratios_pairs_by_repeat():
    assert ratios([2.0, 3.0], [1.0, 2.0]) == [2.0, 1.5]


def test_ratios_missing_value_gives_none():
    assert ratios([2.0, None], [1.0, 2.0]) == [2.0, None]


def test_split_fit_time_three_epochs():
    split = split_fit_time(30.0, [2.0, 2.0, 2.0], [12.1, 14.2, 16.3])
    assert split["report_s"] == pytest.approx(0.1)
    assert split["startup_s"] == pytest.approx(10.0)
    assert split["shutdown_s"] == pytest.approx(13.7)


def test_split_fit_time_one_epoch_keeps_report():
    split = split_fit_time(20.0, [2.0], [12.0])
    assert split["report_s"] is None
    assert split["startup_s"] == pytest.approx(10.0)


def test_split_fit_time_missed_report():
    split = split_fit_time(20.0, [2.0, 2.0], [12.0])
    assert split == {"startup_s": None, "report_s": None, "shutdown_s": None}


def test_ratios_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="numerators"):
        ratios([1.0], [1.0, 2.0])


@pytest.mark.parametrize(
    ("rows", "workers", "batch", "expected"),
    [
        (8748, 1, 32, 273 * 32),
        # Two shards of 4374 rows, 16 rows per worker step, 273 steps on each rank.
        (8748, 2, 32, 273 * 32),
        # Shards of 33, 33 and 33 rows at 4 rows per step: 8 steps each, 96 samples.
        (100, 3, 12, 96),
    ],
)
def test_samples_per_epoch_cases(rows, workers, batch, expected):
    assert samples_per_epoch(rows, workers, batch) == expected


def test_markdown_table_layout():
    table = markdown_table(["a", "b"], [(1, "x"), (2, "y")])
    assert table.splitlines() == ["| a | b |", "| --- | --- |", "| 1 | x |", "| 2 | y |"]


def test_markdown_table_rejects_short_row():
    with pytest.raises(ValueError, match="1 cells for 2 headers"):
        markdown_table(["a", "b"], [(1,)])


def test_wrap_prose_keeps_tables():
    row = "| " + " | ".join(["cell"] * 30) + " |"
    assert wrap_prose(row, width=40) == row


def test_wrap_prose_keeps_code_blocks():
    text = "```\n" + "x " * 40 + "\n```"
    assert wrap_prose(text, width=20) == text


def test_wrap_prose_indents_list_items():
    text = "- " + " ".join(["word"] * 20)
    lines = wrap_prose(text, width=30).splitlines()
    assert len(lines) > 1
    assert all(len(line) <= 30 for line in lines)
    assert all(line.startswith("  ") for line in lines[1:])


def test_verdict_below_and_above():
    assert verdict(1.2, 1.3) == "yes"
    assert verdict(1.4, 1.3) == "no"
    assert verdict(0.995, 0.99, below=False) == "yes"
    assert verdict(0.95, 0.99, below=False) == "no"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads Linux /proc")
def test_proc_readers_on_own_process():
    assert peak_rss_bytes(os.getpid()) > 0
    assert "python" in process_title(os.getpid())


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads Linux /proc")
def test_descendant_pids_finds_child():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        found = descendant_pids(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert child.pid in found
    assert os.getpid() not in found


def fake_results() -> dict:
    """Raw measurements shaped like run_benchmark's output, for 2 repeats and 2 epochs."""

    def ray_run(epoch: float) -> dict:
        return {
            "build_s": 3.0,
            "wall_s": 20.0,
            "epoch_seconds": [epoch, epoch],
            "epoch_cpu_s": [epoch * 0.9],
            "train_losses": [0.3, 0.2],
            "workers_up_s": 4.0,
            "startup_s": 10.0,
            "report_s": 0.05,
            "shutdown_s": 2.0,
            "worker_peak_rss_mib": 500.0,
        }

    plain = {
        "wall_s": 4.0,
        "cpu_s": 3.6,
        "epoch_seconds": [2.0, 2.0],
        "epoch_cpu_s": [1.8, 1.8],
        "train_losses": [0.3, 0.2],
    }
    scoring_runs = {}
    for count, games in ((1, 1000), (2, 2000)):
        plain_scoring = {"wall_s": games * 1e-4, "steady_s": games * 1e-4, "steady_cpu_s": 0.1}
        ray = {
            "wall_s": 5.0,
            "output_blocks": 1,
            "actor_up_s": 1.0,
            "startup_s": 4.0,
            "active_s": games * 2e-4,
            "active_cpu_s": games * 1e-4,
            "task_wall_s": games * 2e-4,
            "tasks": 1,
            "actor_peak_rss_mib": 400.0,
        }
        scoring_runs[count] = {"plain": [plain_scoring] * 2, "predictor": [plain_scoring] * 2}
        scoring_runs[count]["ray"] = [ray] * 2
    return {
        "machine": {
            "cpu_model": "Test CPU",
            "logical_cpus": 2,
            "memory_gib": 8.0,
            "load_average": (1.0, 1.0, 1.0),
            "versions": {
                "platform": "Linux",
                "python": "3.11",
                "torch": "2.13.0",
                "ray": "2.60.0",
                "numpy": "2",
                "pyarrow": "26",
            },
            "date": "2026-01-01T00:00:00+00:00",
        },
        "options": {
            "repeats": 2,
            "epochs": 2,
            "train_config": "configs/lstm.yaml",
            "data_config": "configs/data.yaml",
        },
        "command": "python jobs/benchmark.py --repeats 2 --epochs 2",
        "load_1min": {"prepare": 1.0, "training": 1.0, "scoring": 1.0},
        "load_average_after": (1.0, 1.0, 1.0),
        "memory": {
            "driver_after_prepare_mib": 900.0,
            "driver_after_training_mib": 900.0,
            "driver_after_scoring_mib": 1000.0,
        },
        "prepare": [{"seconds": 3.0, "cpu_s": 2.5, "games": {"train": 6, "val": 2}, "skipped": 0}]
        * 2,
        "ray_init_s": 2.0,
        "worker_probe": {"omp_num_threads": "1", "torch_threads": 1, "peak_rss_mib": 250.0},
        "training": {
            "runs": {
                "plain": [plain] * 2,
                "ray-1": [ray_run(2.2)] * 2,
                "ray-2": [ray_run(3.0)] * 2,
            },
            "plain_threads": 1,
            "tensor_s": 1.0,
            "train_rows": 8748,
            "val_rows": 1690,
            "samples": {"plain": 8736, "ray-1": 8736, "ray-2": 8736},
            "batch_size": 32,
        },
        "scoring": {
            "runs": scoring_runs,
            "games": {1: 1000, 2: 2000},
            "seasons": {1: ["2024-25"], 2: ["2023-24", "2024-25"]},
            "threads": 1,
            "batch_size": 1024,
            "concurrency": 1,
            "checkpoint": "/tmp/checkpoint",
        },
    }


def test_render_report_goal_rows():
    report = render_report(fake_results())
    goals = report.split("## Goals")[1].split("## Training")[0]
    # Ray's epoch of 2.2 s over plain's 2.0 s, and CPU 1.98 s over 1.8 s.
    assert "wall 1.10 (1.10-1.10)x; CPU 1.10 (1.10-1.10)x | wall yes, CPU yes" in goals
    # Once started 0.4 s over 0.2 s for 2,000 games: exactly at the 2x target.
    assert "wall 2.00 (2.00-2.00)x; CPU 2.00 (2.00-2.00)x | wall yes, CPU yes" in goals
    assert "wall 3.00 (3.00-3.00) s; CPU 2.50 (2.50-2.50) s | wall yes, CPU yes" in goals


def test_render_report_has_every_section():
    report = render_report(fake_results())
    for heading in (
        "# Benchmarks",
        "## Goals",
        "## Training",
        "### Ray Train fixed cost",
        "## Scoring",
        "## Data preparation",
        "## Peak memory",
        "## Findings",
    ):
        assert heading in report
    # Prose is wrapped, so phrases are matched with line breaks turned into spaces.
    assert "bit for bit in every repeat" in " ".join(report.split())


def test_load_raw_results_round_trip(tmp_path):
    path = tmp_path / "raw.json"
    path.write_text(json.dumps(fake_results()))
    results = load_raw_results(path)
    assert sorted(results["scoring"]["runs"]) == [1, 2]
    assert results["scoring"]["games"] == {1: 1000, 2: 2000}
    assert render_report(results) == render_report(fake_results())
