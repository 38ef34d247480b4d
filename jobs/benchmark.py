"""Measure what Ray costs and buys for training, scoring and data preparation at this size.

python jobs/benchmark.py --repeats 3 --epochs 3 --output BENCHMARKS.md --raw-json raw.json
python jobs/benchmark.py --from-raw-json raw.json --output BENCHMARKS.md   # report only

Starts its own local Ray with 2 CPUs on loopback.
"""

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

# Lets the script import nba_ray from a plain checkout and from a Ray job's working_dir.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nba_ray.benchmark import BenchmarkOptions, run_benchmark  # noqa: E402
from nba_ray.benchmark_report import load_raw_results, render_report  # noqa: E402
from nba_ray.logs import setup_logging  # noqa: E402

logger = logging.getLogger("benchmark")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per run")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="Ray Train worker counts to measure (default: 1 2)",
    )
    parser.add_argument(
        "--season-counts",
        type=int,
        nargs="+",
        default=[1, 4, 12],
        help="score the latest N regular seasons, for each N given (default: 1 4 12)",
    )
    parser.add_argument("--output", default="BENCHMARKS.md", help="Markdown report to write")
    parser.add_argument("--raw-json", help="also write every raw measurement to this JSON file")
    parser.add_argument(
        "--from-raw-json",
        help="measure nothing; write the report from a file that --raw-json wrote earlier",
    )
    parser.add_argument("--data-config", default="configs/data.yaml", help="prepare-job config")
    parser.add_argument("--train-config", default="configs/lstm.yaml", help="training config")
    parser.add_argument(
        "--root",
        default=".",
        help="folder that relative config paths resolve against (default: current folder)",
    )
    parser.add_argument(
        "--work-dir",
        help="keep splits, runs and checkpoints here (default: a temporary folder, removed)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    setup_logging()
    if args.from_raw_json:
        results = load_raw_results(Path(args.from_raw_json))
    else:
        results = measure(args)
        if results is None:
            return 2
    Path(args.output).write_text(render_report(results))
    logger.info("wrote %s", args.output)
    return 0


def measure(args: argparse.Namespace) -> dict | None:
    """Run every measurement and save the raw results; return None after a logged error."""
    if args.repeats < 1 or args.epochs < 1:
        logger.error(
            "--repeats and --epochs must be at least 1, got %d and %d", args.repeats, args.epochs
        )
        return None
    options = BenchmarkOptions(
        root=Path(args.root).resolve(),
        data_config=Path(args.data_config),
        train_config=Path(args.train_config),
        repeats=args.repeats,
        epochs=args.epochs,
        worker_counts=tuple(args.workers),
        season_counts=tuple(args.season_counts),
        work_dir=Path(args.work_dir) if args.work_dir else None,
    )
    try:
        results = run_benchmark(options)
    except (ValueError, FileNotFoundError) as error:
        logger.error("%s", error)
        return None
    results["command"] = shlex.join(["python", "jobs/benchmark.py", *sys.argv[1:]])
    # Written before the report is rendered, so a rendering error keeps the measurements.
    if args.raw_json:
        Path(args.raw_json).write_text(json.dumps(results, indent=2, default=str) + "\n")
        logger.info("wrote %s", args.raw_json)
    return results


if __name__ == "__main__":
    sys.exit(main())
