"""Score games with a trained checkpoint through Ray Data and summarize against baselines.

    python jobs/score.py --config configs/lstm.yaml                      # the test split
    python jobs/score.py --config configs/lstm.yaml \\
        --timeline data/nba_score_timelines.parquet --seasons 2016-17 2017-18 --season-types regular
"""

import argparse
import logging
import sys
from pathlib import Path

# Lets the script import nba_ray from a plain checkout and from a Ray job's working_dir.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nba_ray.session import init_ray, prefer_loopback  # noqa: E402

prefer_loopback()  # before anything imports ray

from nba_ray.cli import add_config_arguments  # noqa: E402
from nba_ray.config import SEASON_TYPES, TrainJobConfig, load_config  # noqa: E402
from nba_ray.logs import setup_logging  # noqa: E402
from nba_ray.score_job import ScoreInput, run_scoring  # noqa: E402
from nba_ray.trainer import best_checkpoint_of_run, resolve_path  # noqa: E402

logger = logging.getLogger("score")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser, "configs/lstm.yaml", "score.concurrency=2")
    parser.add_argument(
        "--checkpoint", help="checkpoint folder (default: the best checkpoint of the config's run)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--split",
        default="test",
        choices=["train", "val", "cal", "test"],
        help="prepared split to score (default: test)",
    )
    source.add_argument("--input", help="a folder of prepared-split Parquet files")
    source.add_argument("--timeline", help="score-timeline Parquet to build games from")
    parser.add_argument(
        "--seasons",
        nargs="*",
        default=[],
        help="with --timeline: seasons such as 2016-17 (default: all)",
    )
    parser.add_argument(
        "--season-types",
        nargs="*",
        default=["regular", "playoff"],
        help="with --timeline: regular and/or playoff (default: both)",
    )
    parser.add_argument("--name", help="results folder name under score.output_dir")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    setup_logging()
    root = Path(args.root)
    try:
        job = load_config(args.config, TrainJobConfig, args.set)
        if args.seasons and not args.timeline:
            raise ValueError("--seasons selects games of a --timeline file; add --timeline PATH")
        unknown = sorted(set(args.season_types) - set(SEASON_TYPES))
        if unknown:
            raise ValueError(
                f"--season-types {' '.join(unknown)} is invalid; use {' or '.join(SEASON_TYPES)}"
            )
        if args.timeline:
            source = ScoreInput(
                timeline_path=root / args.timeline,
                seasons=args.seasons,
                season_types=args.season_types,
            )
            name = args.name or "seasons-" + ("_".join(args.seasons) or "all")
        else:
            split_dir = Path(args.input) if args.input else root / job.splits_dir / args.split
            source = ScoreInput(split_dir=split_dir)
            name = args.name or (Path(args.input).name if args.input else args.split)
        checkpoint = (
            Path(args.checkpoint)
            if args.checkpoint
            else best_checkpoint_of_run(
                Path(resolve_path(root, job.run.storage_path)) / job.run.name
            )
        )
        init_ray()
        outcome = run_scoring(job, root, source, checkpoint, name)
    except (ValueError, FileNotFoundError) as error:
        logger.error("%s", error)
        return 2
    logger.info(
        "results in %s (%d games, %d rejected)\n\n%s",
        outcome.output_dir,
        outcome.games_scored,
        outcome.games_rejected,
        outcome.markdown,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
