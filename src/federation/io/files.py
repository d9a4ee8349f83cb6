"""Small file helpers shared by the credential and key adapters."""

from __future__ import annotations

import os
from pathlib import Path


def _sync_dir(path: Path) -> None:
    """The directory entry of ``path`` made durable (a new or renamed file survives a
    power loss with its name)."""
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file created with mode 0600 (never readable by others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    _sync_dir(Path(path))


def replace_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` atomically: a new file (``mode``) synced, then renamed over it,
    so a process watching ``path`` reads the old content or the new, never a part."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_dir(path)
