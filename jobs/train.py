"""Train the forecaster with Ray Train.

python jobs/train.py --config configs/lstm.yaml [--set train.seed=1 ...]
ray job submit --working-dir . -- python jobs/train.py --config configs/lstm.yaml --root $PWD
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
from nba_ray.config import TrainJobConfig, load_config  # noqa: E402
from nba_ray.logs import setup_logging  # noqa: E402
from nba_ray.trainer import run_training  # noqa: E402

logger = logging.getLogger("train")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser, "configs/lstm.yaml", "train.max_epochs=3")
    args = parser.parse_args()
    setup_logging()
    try:
        job = load_config(args.config, TrainJobConfig, args.set)
        init_ray()
        outcome = run_training(job, Path(args.root))
    except (ValueError, FileNotFoundError) as error:
        logger.error("%s", error)
        return 2
    logger.info(
        "best epoch %d of %d: val MAE %.4f points (persistence %.4f); checkpoint %s",
        outcome.best_epoch,
        outcome.epochs_run,
        outcome.best_val_mae,
        outcome.val_persistence_mae,
        outcome.best_checkpoint,
    )
    logger.info("run folder: %s", outcome.run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
