"""The node's identity: an Ed25519 key in the data directory, and the node id derived from it.

The key is created on first start with mode 0600 and never leaves the data directory.
``node_id = base32(sha256(public_key))[:20]`` (see federation.events): nobody can
speak for a node id without its private key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.events import node_id_from_public_key, public_key_bytes
from federation.io.files import write_private_file
from memnode.errors import DataDirError

KEY_FILE = "identity.key"


@dataclass(frozen=True)
class Identity:
    key: Ed25519PrivateKey
    public_key: bytes
    node_id: str

    @classmethod
    def from_key(cls, key: Ed25519PrivateKey) -> Identity:
        public = public_key_bytes(key)
        return cls(key=key, public_key=public, node_id=node_id_from_public_key(public))


def load_or_create(data_dir: Path) -> tuple[Identity, bool]:
    """The identity stored in ``data_dir``, created on first start. Returns (identity, created)."""
    path = data_dir / KEY_FILE
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        write_private_file(tmp, pem)
        os.replace(tmp, path)
        return Identity.from_key(key), True
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise DataDirError(f"{path}: unreadable identity key ({exc}); refusing to start") from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise DataDirError(f"{path}: not an Ed25519 key; refusing to start")
    return Identity.from_key(loaded), False
