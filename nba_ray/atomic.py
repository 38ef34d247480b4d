"""Atomic replacement of output files and folders, so a failed job leaves old results intact."""

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield an empty staging folder that replaces `target` only if the block succeeds.

    The staging folder is a sibling of `target`, so the final rename stays on one filesystem.
    On an exception the staging folder is removed and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        yield staging
        replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


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
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def write_json(path: Path, payload: Any) -> None:
    """Write `payload` as indented JSON, atomically."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
