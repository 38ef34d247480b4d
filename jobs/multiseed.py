"""Train and score one config under several seeds with Ray Tune, then summarize across seeds.

python jobs/multiseed.py --config configs/lstm.yaml --seeds 5 [--set train.max_epochs=20 ...]
python jobs/multiseed.py --config configs/lstm.yaml --seed-list 3 7 11 --no-report
"""

import argparse
import logging
import os
import sys
from pathlib import Path

# Lets the script import nba_ray from a plain checkout and from a Ray job's working_dir.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nba_ray.session import prefer_loopback  # noqa: E402

prefer_loopback()  # before anything imports ray

import ray  # noqa: E402

from nba_ray.config import TrainJobConfig, load_config  # noqa: E402
from nba_ray.logs import setup_logging  # noqa: E402
from nba_ray.multiseed import run_multiseed  # noqa: E402

logger = logging.getLogger("multiseed")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML job config, e.g. configs/lstm.yaml")
    seeds = parser.add_mutually_exclusive_group(required=True)
    seeds.add_argument("--seeds", type=int, help="number of seeds: trains seeds 0 .. N-1")
    seeds.add_argument("--seed-list", type=int, nargs="+", help="explicit seeds, e.g. 3 7 11")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key for every seed, e.g. train.max_epochs=3",
    )
    parser.add_argument(
        "--root",
        default=".",
        help="folder that relative config paths resolve against (default: current folder)",
    )
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="skip REPORT.md and its PNG figures; the summary folder is replaced as a whole, "
        "so this also removes a report written earlier (jobs/report.py writes one later)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    setup_logging()
    seeds = list(range(args.seeds)) if args.seeds is not None else args.seed_list
    try:
        job = load_config(args.config, TrainJobConfig, args.set)
        # Without RAY_ADDRESS this starts a private local Ray, because a bare ray.init() would
        # attach to any cluster that `ray start` left running on this machine.
        ray.init(address=os.environ.get("RAY_ADDRESS") or "local")
        outcome = run_multiseed(job, Path(args.root), seeds, write_report=not args.no_report)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        logger.error("%s", error)
        return 2
    finally:
        ray.shutdown()
    logger.info("across-seed summary in %s\n\n%s", outcome.output_dir, outcome.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
