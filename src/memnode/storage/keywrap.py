"""The node's master key: what wraps every per-memory data key (encryption at rest).

``KeyWrapper`` is the small port a key-management service could implement (wrap and
unwrap 32-byte keys, say where it is); ``MasterKey`` is the local implementation:
AES-256 key wrap (RFC 3394, ``cryptography``'s ``aes_key_wrap``) under 32 secret bytes.

Sources, in order: ``--master-key-file PATH`` (``MEMNODE_MASTER_KEY_FILE``), the
``MEMNODE_MASTER_KEY`` environment variable (base64 of 32 bytes), else
``<data_dir>/master.key``, generated (mode 0600) when a new store is created. A key
beside the data protects copies of the Chroma and SQLite files, not a copy of the whole
directory: put it elsewhere (a file on another volume, a Kubernetes Secret in the env).

File format: 32 raw bytes, or text holding the base64 (standard or url-safe) or the
hex of 32 bytes. Messages never include key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from federation.io.files import write_private_file
from memnode.errors import DataDirError

ENV_VAR = "MEMNODE_MASTER_KEY"
MASTER_FILE = "master.key"
KEY_BYTES = 32


class WrongKeyError(DataDirError):
    """A wrapped key does not open under this master key."""


class KeyWrapper(Protocol):
    """Wraps and unwraps 32-byte data keys. ``unwrap`` raises WrongKeyError when the
    blob was not wrapped by this key (or was altered)."""

    def wrap(self, key: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes) -> bytes: ...

    def describe(self) -> str: ...


class MasterKey:
    __slots__ = ("_key", "_source")

    def __init__(self, key: bytes, source: str) -> None:
        if len(key) != KEY_BYTES:
            raise DataDirError(f"master key ({source}) must be {KEY_BYTES} bytes, got {len(key)}")
        self._key = key
        self._source = source

    def wrap(self, key: bytes) -> bytes:
        return aes_key_wrap(self._key, key)

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap(self._key, wrapped)
        except (InvalidUnwrap, ValueError):
            raise WrongKeyError(f"the master key ({self._source}) does not open this "
                                "key") from None

    def describe(self) -> str:
        return f"{self._source}, fingerprint {self.fingerprint()}"

    def fingerprint(self) -> str:
        return hashlib.sha256(b"memnode.master.v1\x00" + self._key).hexdigest()[:8]


def _parse(data: bytes, where: str) -> bytes:
    text = data.strip()
    if len(data) == KEY_BYTES and not all(32 <= b < 127 or b in (9, 10, 13) for b in data):
        return data
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    b64 = text.rstrip(b"=").replace(b"-", b"+").replace(b"_", b"/")
    try:
        raw = base64.b64decode(b64 + b"=" * (-len(b64) % 4), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise DataDirError(f"{where}: expected the base64 or hex of {KEY_BYTES} bytes "
                           f"(or {KEY_BYTES} raw bytes)")
    return raw


def load_master_key(data_dir: Path, path: Path | None, env: Mapping[str, str], *,
                    create: bool) -> MasterKey:
    """The master key from ``path``, else ``env[ENV_VAR]``, else the data directory's
    ``master.key`` (made when ``create``: a new store). A missing source is an error."""
    if path is not None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise DataDirError(f"master key file {path}: cannot read "
                               f"({exc.strerror or exc})") from None
        return MasterKey(_parse(data, f"master key file {path}"), f"file {path}")
    text = env.get(ENV_VAR, "").strip()
    if text:
        return MasterKey(_parse(text.encode(), f"env {ENV_VAR}"), f"env {ENV_VAR}")
    local = data_dir / MASTER_FILE
    if local.is_file():
        return MasterKey(_parse(local.read_bytes(), str(local)), f"file {local}")
    if not create:
        raise DataDirError(f"{data_dir}: its store is encrypted and no master key was given "
                           f"(--master-key-file, ${ENV_VAR} or {local})")
    key = os.urandom(KEY_BYTES)
    write_private_file(local, base64.b64encode(key) + b"\n")
    return MasterKey(key, f"file {local} (generated)")
