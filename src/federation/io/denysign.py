"""The deny list as the federation's CA signs it: ``denied.signed``.

An adapter (``cryptography``, files). The file is one JSON object::

    {"format": "memnode-deny-list/1", "version": 1733050000000,
     "entries": ["node-id-or-certificate-name", ...], "signature": "<base64 DER>"}

``signature`` is ECDSA P-256 / SHA-256 by the CA key over :func:`canonical`: the
format, version and sorted entries as compact, key-sorted ASCII JSON, so the bytes
signed do not depend on how the file is laid out (the signing and checking every CA-signed
document shares: :mod:`federation.io.signeddoc`). ``version`` grows at every change
(the issue time in ms, or the previous version + 1 if the clock is behind): a member
holding a list adopts another only if it is newer. The file's bytes travel verbatim
between sidecars (:class:`federation.messages.SignedDenyList`), and every receiver
verifies them against its own ``ca.crt``.

``memnode federation deny FEDERATION_DIR ENTRY`` (:func:`deny_in_federation`) signs a
new version with ``ca.key`` and writes ``denied.signed``, and ``denied.txt`` beside it
for people to read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from federation.errors import CredentialsError
from federation.io.files import replace_file
from federation.io.pki import (
    DENY_FILE,
    DENY_HEADER,
    SIGNED_DENY_FILE,
    _io_errors,
    _load_ca,
)
from federation.io.signeddoc import (
    SignedDocRejected,
    load_ca_public_key,
    next_version,
    open_doc,
    read_doc,
    sign_doc,
)
from federation.io.signeddoc import canonical as _canonical

__all__ = ["DenyListRejected", "SignedList", "canonical", "check_entry", "deny_in_federation",
           "load_ca_public_key", "read_signed", "sign", "verify"]

FORMAT = "memnode-deny-list/1"
MAX_ENTRIES = 10_000


class DenyListRejected(SignedDocRejected):
    """A signed deny list that is malformed, unsigned or not signed by this CA."""


@dataclass(frozen=True)
class SignedList:
    """A verified signed deny list: its ``payload`` is the file's bytes, verbatim."""

    version: int
    entries: frozenset[str]
    payload: bytes


def check_entry(entry: str) -> str:
    """``entry`` stripped, or CredentialsError if it cannot be a node id or CN."""
    entry = entry.strip()
    if (not entry or "#" in entry or len(entry) > 256
            or any(c.isspace() or not c.isprintable() for c in entry)):
        raise CredentialsError(f"not a node id or certificate name: {entry!r}")
    return entry


def _body(version: int, entries: frozenset[str] | set[str]) -> dict[str, object]:
    return {"format": FORMAT, "version": version, "entries": sorted(entries)}


def canonical(version: int, entries: frozenset[str] | set[str]) -> bytes:
    """The bytes the CA signs."""
    return _canonical(_body(version, entries))


def sign(version: int, entries: frozenset[str], ca_key: ec.EllipticCurvePrivateKey) -> bytes:
    """The ``denied.signed`` bytes for these entries at this version."""
    return sign_doc(_body(version, entries), ca_key)


def verify(payload: bytes, ca_public_key: ec.EllipticCurvePublicKey) -> SignedList:
    """The list ``payload`` holds, or DenyListRejected saying why not."""
    doc = open_doc(payload, ca_public_key, FORMAT, "deny list", DenyListRejected)
    raw = doc.get("entries")
    if not isinstance(raw, list) or len(raw) > MAX_ENTRIES or not all(
            isinstance(e, str) for e in raw):
        raise DenyListRejected("deny list entries are not a list of strings")
    try:
        entries = frozenset(check_entry(e) for e in raw)
    except CredentialsError as exc:
        raise DenyListRejected(f"deny list entry refused: {exc}") from None
    if canonical(doc["version"], entries) != _canonical(doc):  # signed as sorted entries
        raise DenyListRejected("deny list entries are not in their signed form")
    return SignedList(doc["version"], entries, payload)


def read_signed(dir: Path, ca_public_key: ec.EllipticCurvePublicKey) -> SignedList | None:
    """``dir/denied.signed`` verified, None if there is none; DenyListRejected if it is
    bad, CredentialsError if it cannot be read."""
    payload = read_doc(Path(dir) / SIGNED_DENY_FILE, "deny list")
    return None if payload is None else verify(payload, ca_public_key)


def deny_in_federation(federation_dir: Path, entry: str, *,
                       now_ms: int | None = None) -> SignedList | None:
    """Sign a new version of the federation's deny list with ``entry`` added and write
    ``denied.signed`` and ``denied.txt``. The first signed list takes in the entries of
    an unsigned ``denied.txt``. None if ``entry`` was already on the list."""
    from federation.io.denylist import load_deny_list

    federation_dir = Path(federation_dir)
    entry = check_entry(entry)
    ca_key, _ = _load_ca(federation_dir)
    current = read_signed(federation_dir, ca_key.public_key())
    entries = current.entries if current else load_deny_list(federation_dir)
    if current is not None and entry in entries:
        return None
    version = next_version(current.version if current else 0,
                           time.time_ns() // 1_000_000 if now_ms is None else now_ms)
    entries = entries | {entry}
    payload = sign(version, entries, ca_key)
    text = (DENY_HEADER + f"# Signed by the federation CA: version {version} in "
            f"{SIGNED_DENY_FILE} (the list members enforce and gossip).\n"
            + "".join(e + "\n" for e in sorted(entries)))
    with _io_errors(federation_dir):
        replace_file(federation_dir / SIGNED_DENY_FILE, payload, 0o644)
        replace_file(federation_dir / DENY_FILE, text.encode(), 0o644)
    return SignedList(version, entries, payload)
