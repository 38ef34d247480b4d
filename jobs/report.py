"""Write REPORT.md and its PNG figures into a multi-seed folder.

python jobs/report.py --multiseed-dir outputs/scores/lstm-multiseed
"""

import argparse
import logging
import sys
from pathlib import Path

# Lets the script import nba_ray from a plain checkout and from a Ray job's working_dir.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nba_ray.logs import setup_logging  # noqa: E402
from nba_ray.report import write_report  # noqa: E402

logger = logging.getLogger("report")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--multiseed-dir",
        required=True,
        help="folder written by jobs/multiseed.py, e.g. outputs/scores/lstm-multiseed",
    )
    parser.add_argument(
        "--example-games",
        type=int,
        default=4,
        help="number of test games drawn with their forecasts (default: %(default)s)",
    )
    args = parser.parse_args()
    setup_logging()
    try:
        path = write_report(Path(args.multiseed_dir), args.example_games)
    except (ValueError, FileNotFoundError) as error:
        logger.error("%s", error)
        return 2
    except KeyError as error:
        logger.error(
            "%s/summary.json has no key %s; pass a folder written by jobs/multiseed.py",
            args.multiseed_dir,
            error,
        )
        return 2
    logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
