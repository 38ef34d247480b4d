"""Turn a folder of raw NBA Stats playbyplayv2 games into a score-timeline Parquet file.

python jobs/ingest_raw.py --input data/raw_samples/legacy_pbp --output timelines.parquet
"""

import argparse
import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path

# Lets the script import nba_ray from a plain checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow.parquet as pq  # noqa: E402

from nba_ray.ingest import DataError  # noqa: E402
from nba_ray.logs import setup_logging  # noqa: E402
from nba_ray.raw_pbp import read_playbyplay_folder  # noqa: E402

logger = logging.getLogger("ingest_raw")


def write_parquet(table, path: Path) -> None:
    """Write `table` through a temporary sibling file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; the output is an ordinary data file
    try:
        pq.write_table(table, tmp_name, compression="zstd")
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, type=Path, help="folder with gameplaybyplay/")
    parser.add_argument("--output", required=True, type=Path, help="timeline Parquet to write")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        table, skipped = read_playbyplay_folder(args.input)
        if table.num_rows == 0:
            raise DataError(
                f"{args.input}: none of its {len(skipped)} games could be read (reasons logged "
                "above); fix those files or point --input at another folder"
            )
    except DataError as error:
        logger.error("%s", error)
        return 2
    write_parquet(table, args.output)
    games = len(table["game_id"].unique())
    logger.info("wrote %d games (%d events) to %s; skipped %d games",
                games, table.num_rows, args.output, len(skipped))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
