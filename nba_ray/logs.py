"""Logging setup shared by every job and Ray worker."""

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: int | str = logging.INFO) -> None:
    """Configure the root logger once per process with one stdout handler."""
    root = logging.getLogger()
    # Ray workers already route the root logger to the driver; a second handler would print
    # every line twice.
    if root.handlers:
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
