"""Atomic replacement of output files and folders, so a failed job leaves old results intact."""

import contextlib
import glob
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield an empty staging folder that replaces `target` only if the block succeeds.

    The staging folder is a sibling of `target`, so the final rename stays on one filesystem.
    On an exception the staging folder is removed and `target` is untouched. A process killed
    inside the block leaves its staging folder behind, and the next call for the same target
    on this host removes it (see `remove_stale_staging`).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target)
    # The owner's host and pid in the name let a later run tell a dead run's folder from a
    # live one: .<name>.staging-<host>-<pid>-<random>
    owner = f"{socket.gethostname()}-{os.getpid()}-"
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(target) + owner, dir=target.parent))
    # mkdtemp creates 0700 folders; results are meant to be as readable as any other output.
    os.chmod(staging, _default_mode(0o777))
    try:
        yield staging
        replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_stale_staging(target: Path) -> list[Path]:
    """Delete staging folders of `target` whose owner process on this host has exited.

    Folders of a running process, of another host sharing the filesystem, or without an owner
    in their name are kept, because a job may still be writing them. Returns the removed paths.
    """
    # NOTE: a process in another PID namespace with the same host name, such as a container
    # sharing this folder and host name, looks exited here.
    target = Path(target)
    prefix = _staging_prefix(target)
    host = socket.gethostname()
    removed = []
    for path in sorted(target.parent.glob(glob.escape(prefix) + "*")):
        owner = path.name[len(prefix) :].rsplit("-", 2)
        if len(owner) != 3 or owner[0] != host or not owner[1].isdigit():
            continue
        if _process_exists(int(owner[1])):
            continue
        shutil.rmtree(path, ignore_errors=True)
        logger.info("removed %s, left by process %s that no longer runs", path, owner[1])
        removed.append(path)
    return removed


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.staging-"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def replace_dir(source: Path, target: Path) -> None:
    """Move `source` to `target`, replacing any existing folder there.

    POSIX cannot rename a folder over a non-empty one, so the old folder is first renamed aside
    and deleted only after the new one is in place. A crash between the two renames leaves the
    old results under `.<name>.old-*` next to the target, never a half-written target.
    """
    source, target = Path(source), Path(target)
    backup = None
    if target.exists():
        backup = target.parent / f".{target.name}.old-{os.getpid()}"
        shutil.rmtree(backup, ignore_errors=True)
        os.rename(target, backup)
    try:
        os.rename(source, target)
    except BaseException:
        if backup is not None:
            os.rename(backup, target)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp_name, _default_mode(0o666))
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def write_json(path: Path, payload: Any) -> None:
    """Write `payload` as indented JSON, atomically."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def _default_mode(base: int) -> int:
    """Return `base` reduced by the process umask, the mode open() and mkdir() would give."""
    umask = os.umask(0)
    os.umask(umask)
    return base & ~umask
