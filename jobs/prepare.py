"""Build the chronological Parquet splits from the score-timeline file.

python jobs/prepare.py --config configs/data.yaml [--set seasons='[2023-24]' ...]
"""

import argparse
import logging
import sys
from pathlib import Path

# Lets the script import nba_ray from a plain checkout and from a Ray job's working_dir.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nba_ray.cli import add_config_arguments  # noqa: E402
from nba_ray.config import DataConfig, load_config  # noqa: E402
from nba_ray.logs import setup_logging  # noqa: E402
from nba_ray.splits import format_split_table, prepare_splits  # noqa: E402

logger = logging.getLogger("prepare")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser, "configs/data.yaml", "max_games_per_split=300")
    args = parser.parse_args()
    setup_logging()
    try:
        config = load_config(args.config, DataConfig, args.set)
        manifest = prepare_splits(config, Path(args.root))
    except (ValueError, FileNotFoundError) as error:
        logger.error("%s", error)
        return 2
    logger.info(
        "split sizes and dates (%d games skipped, %.1f s):\n%s",
        manifest["skipped_games"],
        manifest["seconds"],
        format_split_table(manifest),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
