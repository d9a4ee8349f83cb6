"""The federation's metadata key, and the form metadata takes when it replicates.

TEAM memories replicate their metadata with every value replaced by
``HMAC-SHA256(key, typed value)`` truncated to 12 bytes (16 base64url characters);
keys stay in clear. A keyed hash, not plain SHA-256: metadata values are usually
low-entropy (a user id, a phone number, a project name), and anyone who sees
``sha256("42")`` recovers ``42`` by hashing every candidate, in seconds. Without the
key, a peer that is not a member cannot even test a guess.

Equality filters keep working across the mesh: the querying node hashes the wanted
value with the same key (``match_values``) and matches either form.

Honest limits:
- anyone holding the key (every member) can confirm a guess for a value, so the
  hash protects against outsiders and stolen replicas, not against members;
- equality stays visible: two memories with the same value, under any field, carry
  the same hash (the hash does not bind the field name, so filters stay simple);
- 96 bits are plenty against accidental collisions, not a promise of secrecy.

Key sources, in order: a key file (``MetadataKey.load(path, ...)``), the
``MEMNODE_METADATA_KEY`` environment variable (64 hex characters; empty means
unset), else a fixed development key that is public (``is_development``): the caller
must log a warning with ``describe()``. Every node of a federation needs the same
key, or TEAM filters silently match nothing across nodes; compare ``fingerprint()``.

Key file format: exactly 32 raw bytes, or text holding 64 hex characters or the
base64 (standard or url-safe, padding optional) of 32 bytes, surrounding whitespace
ignored. ``write`` produces the hex form. Error messages never include key material.
A file may also hold several keys with ids, one of them current, for rotation without
downtime: :mod:`federation.io.keyring`, which the node reads (this form is its key 0).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from collections.abc import Mapping
from pathlib import Path

from federation.errors import MetadataKeyError
from federation.events import MetaValue, SharedPrivacy

Metadata = dict[str, MetaValue]

__all__ = ["ENV_VAR", "HASH_BYTES", "KEY_BYTES", "MetadataKey"]

ENV_VAR = "MEMNODE_METADATA_KEY"
KEY_BYTES = 32
HASH_BYTES = 12  # 16 base64url characters, no padding

# Public on purpose: a fixed, well-known key so a development mesh works with no setup.
_DEVELOPMENT_KEY = hashlib.sha256(b"memnode development metadata key - NOT SECRET").digest()
_DOMAIN = b"memnode.metadata.v1\x00"  # separates these MACs from any other use of a key


class MetadataKey:
    """32 secret bytes shared by every node of a federation."""

    __slots__ = ("_key", "_source", "is_development")

    def __init__(self, key: bytes, *, source: str = "given", is_development: bool = False) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            size = len(key) if isinstance(key, bytes) else type(key).__name__
            raise MetadataKeyError(f"metadata key must be {KEY_BYTES} bytes, got {size}")
        self._key = key
        self._source = source
        self.is_development = is_development

    # -- construction -------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | None, env: Mapping[str, str]) -> MetadataKey:
        """The key from ``path`` if given, else from ``env[ENV_VAR]``, else the
        development default. A given path must exist: no silent fallback.

        Raises MetadataKeyError on unreadable or malformed key material.
        """
        if path is not None:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                raise MetadataKeyError(
                    f"metadata key file {path}: cannot read ({exc.strerror or exc})"
                ) from exc
            return cls(_parse_file(data, where=f"metadata key file {path}"), source=f"file {path}")
        text = env.get(ENV_VAR, "").strip()
        if text:
            return cls(_parse_hex(text, where=f"env {ENV_VAR}"), source=f"env {ENV_VAR}")
        return cls.development()

    @classmethod
    def development(cls) -> MetadataKey:
        """The fixed development key. It is public: never use it in production."""
        return cls(_DEVELOPMENT_KEY, source="DEVELOPMENT DEFAULT (not secret)", is_development=True)

    @classmethod
    def generate(cls) -> MetadataKey:
        """A new random key (os.urandom)."""
        return cls(os.urandom(KEY_BYTES), source="generated")

    def write(self, path: Path) -> None:
        """Write the key as hex text to a new file created with mode 0600.

        Refuses to overwrite (FileExistsError): replacing a federation key breaks
        every TEAM filter against replicas hashed with the old one. Refuses to write
        the development key (ValueError), which would then pass for a real one.
        """
        if self.is_development:
            raise ValueError("refusing to write the development metadata key to a file")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(self._key.hex() + "\n")
            f.flush()
            os.fsync(f.fileno())

    def secret_hex(self) -> str:
        """The key itself, in hex: only for writing a key file."""
        return self._key.hex()

    # -- description --------------------------------------------------------------

    def describe(self) -> str:
        """Where the key came from: "file /x/y", "env MEMNODE_METADATA_KEY",
        "DEVELOPMENT DEFAULT (not secret)", "generated" or "given"."""
        return self._source

    def fingerprint(self) -> str:
        """A short public id of the key (8 hex characters) to check that nodes share
        the same key, in logs or status, without revealing it."""
        return hmac.new(self._key, _DOMAIN + b"fingerprint", hashlib.sha256).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"MetadataKey({self._source}, fingerprint={self.fingerprint()})"

    # -- hashing ------------------------------------------------------------------

    def hash_value(self, value: MetaValue) -> str:
        """HMAC-SHA256 of the typed value, truncated to 12 bytes, base64url (16 chars).

        Deterministic; 1, 1.0, True and "1" give four different hashes.
        """
        mac = hmac.new(self._key, _DOMAIN + _encode(value), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:HASH_BYTES]).decode("ascii")

    def shared_form(self, metadata: Metadata, privacy: int) -> Metadata:
        """The metadata as it leaves this node: TEAM values hashed, PUBLIC unchanged
        (a copy). Levels that never replicate (PRIVATE, EPHEMERAL): ValueError."""
        if privacy not in tuple(SharedPrivacy):
            name = getattr(privacy, "name", str(privacy))
            raise ValueError(f"{name} metadata is never replicated")
        if SharedPrivacy(privacy) is SharedPrivacy.TEAM:
            return {k: self.hash_value(v) for k, v in metadata.items()}
        return dict(metadata)

    def match_values(self, value: MetaValue) -> list[MetaValue]:
        """What a stored metadata value may be for an equality filter on ``value``:
        the value itself (local and PUBLIC records) or its hash (TEAM replicas)."""
        return [value, self.hash_value(value)]


def _encode(value: MetaValue) -> bytes:
    """Tag byte + canonical bytes. bool before int: True is an int in Python."""
    if isinstance(value, bool):
        return b"b\x01" if value else b"b\x00"
    if isinstance(value, int):
        return b"i" + str(value).encode("ascii")
    if isinstance(value, float):
        if value == 0.0:
            value = 0.0  # -0.0 == 0.0, so they must hash alike
        return b"f" + struct.pack(">d", value)
    if isinstance(value, str):
        return b"s" + value.encode("utf-8", "surrogatepass")
    raise TypeError(f"metadata values are str, int, float or bool, not {type(value).__name__}")


def _parse_hex(text: str, *, where: str) -> bytes:
    if len(text) != 2 * KEY_BYTES:
        raise MetadataKeyError(
            f"{where}: expected {2 * KEY_BYTES} hex characters, got {len(text)} characters"
        )
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise MetadataKeyError(f"{where}: not valid hex") from None


def _parse_file(data: bytes, *, where: str) -> bytes:
    expected = (
        f"expected {KEY_BYTES} raw bytes, {2 * KEY_BYTES} hex characters "
        f"or the base64 of {KEY_BYTES} bytes"
    )
    if len(data) == KEY_BYTES and not _looks_like_text(data):
        return data
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise MetadataKeyError(f"{where}: {expected}, got {len(data)} bytes of binary") from None
    if len(text) == 2 * KEY_BYTES:
        return _parse_hex(text, where=where)
    b64 = text.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) == KEY_BYTES:
        return raw
    if len(data) == KEY_BYTES:
        raise MetadataKeyError(f"{where}: {expected}; these {KEY_BYTES} bytes are text, not a key")
    raise MetadataKeyError(f"{where}: {expected}, got {len(data)} bytes")


def _looks_like_text(data: bytes) -> bool:
    """Printable ASCII and whitespace only: 1 chance in 10**13 for random bytes."""
    return all(32 <= b < 127 or b in (9, 10, 13) for b in data)
