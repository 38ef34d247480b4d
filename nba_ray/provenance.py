"""Records that make a run reproducible: package versions and data fingerprints."""

import hashlib
import importlib.metadata
import platform
import sys
from pathlib import Path

TRACKED_PACKAGES = ("nba_ray", "torch", "numpy", "pandas", "pyarrow", "ray", "pyyaml")


def package_versions() -> dict[str, str]:
    """Return the Python version and the installed version of each package the project uses."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def file_fingerprint(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Return the SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def folder_fingerprint(folder: Path, pattern: str = "**/*.parquet") -> str:
    """Return one SHA-256 over the relative names and bytes of the matching files in `folder`."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob(pattern)):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(file_fingerprint(path).encode())
    return digest.hexdigest()
