"""Erasure orders as the federation's CA signs them: ``erasures.signed``.

An adapter (``cryptography``, files). One signed document (:mod:`federation.io.signeddoc`,
as the deny list) holds every order issued, so it gossips like the deny list: digests
carry its version, a peer holding an older one is sent the bytes::

    {"format": "memnode-erasure-orders/1", "version": 1733050000000,
     "orders": [{"serial": 1, "origin": "NODE_ID", "ids": [], "issued_ms": 1733050000000}],
     "signature": "<base64 DER>"}

An order names an origin and, optionally, memory ids of it (``ids`` empty: every memory
of that origin); its serial is unique (the previous highest + 1). Orders are only added.
What a member does with them: :mod:`federation.erasure`.

``memnode federation erase --origin ID [--id ID]... --ca-dir DIR``
(:func:`erase_in_federation`) adds an order, signs a new version with ``ca.key`` and
writes ``erasures.signed``; copy it into any one member's credentials directory.
:class:`ErasureList` is a member's view: the newest verified document, from that file
(re-read when it changes), from peers or from its node's log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from federation.erasure import ErasureOrder
from federation.errors import CredentialsError
from federation.io.denysign import check_entry
from federation.io.files import replace_file
from federation.io.filewatch import FileWatch, read_or_none
from federation.io.pki import SIGNED_ERASURE_FILE, _io_errors, _load_ca
from federation.io.signeddoc import (
    Newest,
    SignedDocRejected,
    load_ca_public_key,
    next_version,
    open_doc,
    read_doc,
    sign_doc,
)

FORMAT = "memnode-erasure-orders/1"
MAX_ORDERS = 10_000

log = logging.getLogger("memnode.federation.erasure")


class ErasureOrdersRejected(SignedDocRejected):
    """Signed erasure orders that are malformed, unsigned or not signed by this CA."""


@dataclass(frozen=True)
class SignedOrders:
    """Verified erasure orders: ``payload`` is the file's bytes, verbatim."""

    version: int
    orders: tuple[ErasureOrder, ...]
    payload: bytes


def check_origin(origin: str) -> str:
    """``origin`` stripped: what a deny list entry may be, without a ``/`` (a node id)."""
    origin = check_entry(origin)
    if "/" in origin:
        raise CredentialsError(f"not a node id: {origin!r}")
    return origin


def memory_id_of(origin: str, given: str) -> str:
    """A memory id of ``origin`` from a full id (``origin/local``) or a bare local id."""
    given = given.strip()
    head, sep, tail = given.partition("/")
    if sep and head != origin:
        raise CredentialsError(f"memory {given!r} is not of origin {origin}")
    local = tail if sep else given
    if not local or len(local) > 256 or any(c.isspace() or not c.isprintable()
                                            for c in local):
        raise CredentialsError(f"not a memory id: {given!r}")
    return f"{origin}/{local}"


def _order_doc(order: ErasureOrder) -> dict[str, Any]:
    return {"serial": order.serial, "origin": order.origin, "ids": sorted(order.ids),
            "issued_ms": order.issued_ms}


def _body(version: int, orders: Sequence[ErasureOrder]) -> dict[str, Any]:
    return {"format": FORMAT, "version": version,
            "orders": [_order_doc(o) for o in sorted(orders, key=lambda o: o.serial)]}


def sign(version: int, orders: Sequence[ErasureOrder],
         ca_key: ec.EllipticCurvePrivateKey) -> bytes:
    return sign_doc(_body(version, orders), ca_key)


def _order(raw: object) -> ErasureOrder:
    if not isinstance(raw, dict) or set(raw) != {"serial", "origin", "ids", "issued_ms"}:
        raise ErasureOrdersRejected("an erasure order is not an object of serial, origin, "
                                    "ids, issued_ms")
    serial, origin, ids, issued = raw["serial"], raw["origin"], raw["ids"], raw["issued_ms"]
    if type(serial) is not int or serial < 1 or type(issued) is not int or issued < 0:
        raise ErasureOrdersRejected("an erasure order's serial or issue time is not valid")
    if not isinstance(origin, str) or not isinstance(ids, list) or not all(
            isinstance(i, str) for i in ids):
        raise ErasureOrdersRejected("an erasure order's origin or ids are not strings")
    try:
        origin = check_origin(origin)
        memory_ids = frozenset(memory_id_of(origin, i) for i in ids)
    except CredentialsError as exc:
        raise ErasureOrdersRejected(f"erasure order {serial} refused: {exc}") from None
    return ErasureOrder(serial, origin, memory_ids, issued)


def verify(payload: bytes, ca_public_key: ec.EllipticCurvePublicKey) -> SignedOrders:
    """The orders ``payload`` holds, or ErasureOrdersRejected saying why not."""
    doc = open_doc(payload, ca_public_key, FORMAT, "erasure orders", ErasureOrdersRejected)
    raw = doc.get("orders")
    if not isinstance(raw, list) or len(raw) > MAX_ORDERS:
        raise ErasureOrdersRejected("erasure orders are not a list")
    orders = tuple(_order(o) for o in raw)
    if len({o.serial for o in orders}) != len(orders):
        raise ErasureOrdersRejected("two erasure orders with one serial")
    return SignedOrders(doc["version"], orders, payload)


def read_signed(dir: Path, ca_public_key: ec.EllipticCurvePublicKey) -> SignedOrders | None:
    payload = read_doc(Path(dir) / SIGNED_ERASURE_FILE, "erasure orders")
    return None if payload is None else verify(payload, ca_public_key)


def erase_in_federation(federation_dir: Path, origin: str, ids: Sequence[str] = (), *,
                        now_ms: int | None = None) -> tuple[ErasureOrder, SignedOrders]:
    """Add an order for ``origin`` (``ids``: only those memories), sign a new version
    of the federation's erasure orders with its CA key and write ``erasures.signed``."""
    federation_dir = Path(federation_dir)
    origin = check_origin(origin)
    memory_ids = frozenset(memory_id_of(origin, i) for i in ids)
    ca_key, _ = _load_ca(federation_dir)
    current = read_signed(federation_dir, ca_key.public_key())
    held = current.orders if current else ()
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    order = ErasureOrder(max((o.serial for o in held), default=0) + 1, origin, memory_ids,
                         now_ms)
    version = next_version(current.version if current else 0, now_ms)
    payload = sign(version, [*held, order], ca_key)
    with _io_errors(federation_dir):
        replace_file(federation_dir / SIGNED_ERASURE_FILE, payload, 0o644)
    return order, SignedOrders(version, (*held, order), payload)


class ErasureList:
    """A member's erasure orders: the newest CA-signed document it knows, from
    ``dir/erasures.signed`` (re-read when it changes, looked at every ``check_every``
    s), from a peer or from its node's log (:meth:`offer`). A document not signed by
    the CA of ``dir/ca.crt`` is rejected, counted in ``rejected`` and logged once per
    source. :meth:`take` hands each newly adopted document to the core once.
    Thread-safe."""

    def __init__(self, dir: Path, *, check_every: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.dir = Path(dir)
        ca = load_ca_public_key(self.dir)
        self._newest: Newest[SignedOrders] = Newest(lambda p: verify(p, ca),
                                                    "erasure orders", log)
        self._file = FileWatch([self.dir / SIGNED_ERASURE_FILE], check_every=check_every,
                               clock=clock)
        self._lock = threading.Lock()
        self._handed = 0
        payload = read_or_none(self.dir / SIGNED_ERASURE_FILE, log)
        if payload is not None:
            self.offer(payload, str(self.dir / SIGNED_ERASURE_FILE))

    @property
    def version(self) -> int:
        return self._newest.version

    @property
    def payload(self) -> bytes | None:
        return self._newest.payload

    @property
    def rejected(self) -> int:
        return self._newest.rejected

    def offer(self, payload: bytes, source: str) -> bool:
        signed = self._newest.offer(payload, source)
        if signed is not None:
            log.info("erasure orders version %d from %s adopted: %d orders", signed.version,
                     source, len(signed.orders))
        return signed is not None

    def poll(self) -> None:
        """Read the file again if it changed (when due)."""
        payload = self._file.read_if_changed(log)
        if payload is not None:
            self.offer(payload, str(self._file.paths[0]))

    def restored(self, record: bytes) -> SignedOrders | None:
        """The orders the node's log keeps (``record``, verified; adopted if newer):
        :meth:`take` then hands over only newer ones (a new core starts from these)."""
        signed = None
        if record:
            try:
                signed = self._newest.verify(record)
            except SignedDocRejected as exc:
                log.warning("the erasure orders in the node's log do not verify (%s): "
                            "not enforced", exc)
            else:
                self.offer(record, "its node's log")
        with self._lock:
            self._handed = signed.version if signed else 0
        return signed

    def take(self) -> SignedOrders | None:
        """The document adopted since the last take, if any (for the core)."""
        self.poll()
        held = self._newest.held
        with self._lock:
            if held is None or held.version <= self._handed:
                return None
            self._handed = held.version
        return held
