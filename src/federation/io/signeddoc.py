"""Documents the federation's CA signs: the deny list and the erasure orders.

An adapter (``cryptography``, files). A signed document is one JSON object holding a
``format``, a positive integer ``version`` (grows at every change: the signing time in
ms, or the previous version + 1 if the clock is behind), its own fields, and
``signature``: ECDSA P-256 / SHA-256 by the CA key over :func:`canonical`, the object
without its signature as compact, key-sorted ASCII JSON (so the bytes signed do not
depend on how the file is laid out). The file's bytes travel verbatim between sidecars
and every receiver verifies them against its own ``ca.crt``; a member adopts a document
only if it is newer than the one it holds (:class:`Newest`).

:mod:`federation.io.denysign` and :mod:`federation.io.erasesign` define the two formats.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from federation.errors import CredentialsError
from federation.io.pki import CA_CERT, _ec_public_key, _parse_cert, _read

MAX_PAYLOAD_BYTES = 1 << 20


class SignedDocRejected(CredentialsError):
    """A signed document that is malformed, unsigned or not signed by this CA."""


def canonical(body: Mapping[str, Any]) -> bytes:
    """The bytes the CA signs: ``body`` without its signature."""
    unsigned = {k: v for k, v in body.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()


def sign_doc(body: Mapping[str, Any], ca_key: ec.EllipticCurvePrivateKey) -> bytes:
    """The file's bytes: ``body`` (with its format and version) and its signature."""
    signature = ca_key.sign(canonical(body), ec.ECDSA(hashes.SHA256()))
    doc = {**body, "signature": base64.b64encode(signature).decode()}
    return (json.dumps(doc, indent=1) + "\n").encode()


def open_doc(payload: bytes, ca_public_key: ec.EllipticCurvePublicKey, fmt: str,
             what: str, error: type[SignedDocRejected] = SignedDocRejected) -> dict[str, Any]:
    """The JSON object of ``payload`` once its format, version and CA signature are
    checked; ``error`` saying why not. ``check`` the other fields yourself, and sign
    over what you checked: the signature covers the object as it is."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise error(f"{what} of {len(payload)} bytes: too large")
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise error(f"{what} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise error(f"{what} is not in the {fmt} format")
    version, signature = doc.get("version"), doc.get("signature")
    if type(version) is not int or version < 1:
        raise error(f"{what} without a positive integer version")
    if not isinstance(signature, str) or not signature:
        raise error(f"{what} is not signed")
    try:
        ca_public_key.verify(base64.b64decode(signature, validate=True), canonical(doc),
                             ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error):
        raise error(f"{what} signature is not the federation CA's") from None
    return doc


def next_version(previous: int, now_ms: int | None = None) -> int:
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return max(now_ms, previous + 1)


def load_ca_public_key(dir: Path) -> ec.EllipticCurvePublicKey:
    path = Path(dir) / CA_CERT
    return _ec_public_key(_parse_cert(_read(path, "the federation's"), path), path)


class Signed(Protocol):
    """A verified document: its version and its bytes as signed."""

    @property
    def version(self) -> int: ...
    @property
    def payload(self) -> bytes: ...


D = TypeVar("D", bound=Signed)


class Newest(Generic[D]):
    """The newest verified document of one kind a member knows, from a file or a peer.

    ``offer`` verifies with ``verify`` (which raises SignedDocRejected), adopts only a
    newer version, counts rejections in ``rejected`` and logs them once per source.
    Thread-safe."""

    def __init__(self, verify: Callable[[bytes], D], what: str, log: logging.Logger) -> None:
        self.verify = verify
        self._what = what
        self._log = log
        self._lock = threading.Lock()
        self._logged: set[str] = set()
        self.held: D | None = None
        self.rejected = 0

    @property
    def version(self) -> int:
        held = self.held
        return held.version if held else 0

    @property
    def payload(self) -> bytes | None:
        held = self.held
        return held.payload if held else None

    def offer(self, payload: bytes, source: str) -> D | None:
        """The document adopted, or None (rejected, or not newer). Never raises."""
        try:
            doc = self.verify(payload)
        except SignedDocRejected as exc:
            with self._lock:
                self.rejected += 1
                first = source not in self._logged
                self._logged.add(source)
            (self._log.warning if first else self._log.debug)(
                "%s from %s rejected: %s (logged once per source)", self._what, source, exc)
            return None
        with self._lock:
            if doc.version <= self.version:
                return None
            self.held = doc
        return doc


def read_doc(path: Path, what: str) -> bytes | None:
    """A signed document's file: its bytes, None if there is none; CredentialsError if
    it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(f"cannot read the {what} {path}: {exc}") from exc
