"""Connecting a job to Ray: an existing cluster, or a private local one on loopback.

Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it is imported (Ray 2.60,
`ray/_private/ray_constants.py`). Set to 0 it makes a locally started Ray bind 127.0.0.1 instead
of the machine's routable address, so `prefer_loopback` must run before anything imports ray.
"""

import logging
import os

logger = logging.getLogger(__name__)


def prefer_loopback() -> None:
    """Keep a Ray that this process starts itself on 127.0.0.1, with token authentication.

    Does nothing when RAY_ADDRESS names a cluster to join, because a multi-node cluster must
    not be limited to one node.
    """
    if os.environ.get("RAY_ADDRESS"):
        return
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "token")


def init_ray() -> None:
    """Join the cluster in RAY_ADDRESS (set by `ray job submit`), or start a local Ray."""
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
        logger.info("connected to Ray cluster at %s", address)
    else:
        ray.init(dashboard_host="127.0.0.1")
        logger.info("using a local Ray: %s", ray.cluster_resources())
