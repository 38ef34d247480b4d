"""Logging setup shared by every job and Ray worker."""

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: int | str = logging.INFO) -> None:
    """Configure the root logger once per process with one stdout handler."""
    root = logging.getLogger()
    if any(getattr(handler, "_nba_ray", False) for handler in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
    handler._nba_ray = True  # marks our handler so a second call does not add another
    root.addHandler(handler)
    root.setLevel(level)
