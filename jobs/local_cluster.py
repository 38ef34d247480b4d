"""Start or stop a private single-node Ray cluster (127.0.0.1 only, token auth) for this project.

    python jobs/local_cluster.py start --num-cpus 2 --state-dir outputs/cluster
    source outputs/cluster/env.sh        # or paste the printed export lines
    ray job submit --working-dir . -- python jobs/train.py --config configs/lstm.yaml --root $PWD
    python jobs/local_cluster.py stop --state-dir outputs/cluster

`stop` stops only the cluster recorded in --state-dir, never other Ray instances on the machine.
"""

import argparse
import logging
import shlex
import sys
from pathlib import Path

# Lets the script import nba_ray from a plain checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nba_ray.cluster import STATE_FILE, ClusterError, LocalCluster  # noqa: E402
from nba_ray.logs import setup_logging  # noqa: E402

logger = logging.getLogger("local_cluster")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument(
        "--state-dir",
        default="outputs/cluster",
        help="holds the token, cluster.json and env.sh (default: %(default)s)",
    )
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs the node advertises")
    parser.add_argument(
        "--num-gpus", type=int, default=None, help="GPUs the node advertises (default: detected)"
    )
    args = parser.parse_args()
    setup_logging()
    state_dir = Path(args.state_dir)
    try:
        if args.action == "stop":
            if not (state_dir / STATE_FILE).exists():
                logger.info("no cluster recorded in %s; nothing to stop", state_dir)
                return 0
            LocalCluster.attach(state_dir).stop()
            return 0
        # Refuses while a cluster recorded in state_dir still runs; cleans up a stale record.
        cluster = LocalCluster(
            num_cpus=args.num_cpus, num_gpus=args.num_gpus, state_dir=state_dir, stop_at_exit=False
        ).start()
    except ClusterError as error:
        logger.error("%s", error)
        return 1
    logger.info("cluster running; export these (or `source %s`):", state_dir / "env.sh")
    for key, value in cluster.env.items():
        print(f"export {key}={shlex.quote(value)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
