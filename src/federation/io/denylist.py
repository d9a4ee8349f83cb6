"""The federation's deny list: members that may no longer speak to the mesh.

An entry is a node id (refused when it is the sender of a message) or a certificate
name (the CN given to ``issue --name``: refused whatever node id it claims). Deny the
certificate name too: a member can make itself a new node id at will, but not a new
certificate.

The source of truth is the list signed by the federation CA (``denied.signed``,
:mod:`federation.io.denysign`), written by ``memnode federation deny FEDERATION_DIR``
and gossiped between sidecars, so copying it to one member is enough (copying it to
all still works). ``denied.txt``: one entry per line, ``#`` starts a comment; in the
federation directory it is the signed list written out to read, in a node directory
an unsigned local addition that node alone enforces (kept for compatibility).
:class:`DenyList` re-reads both when they change.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from federation.errors import CredentialsError
from federation.io.denysign import (
    SignedList,
    check_entry,
    deny_in_federation,
    load_ca_public_key,
    verify,
)
from federation.io.filewatch import FileWatch, read_or_none
from federation.io.pki import CA_CERT, CA_KEY, DENY_FILE, SIGNED_DENY_FILE, _io_errors
from federation.io.signeddoc import Newest
from federation.io.tls import auth_values

log = logging.getLogger("memnode.federation.deny")


def add_to_deny_list(dir: Path, entry: str) -> bool:
    """Deny ``entry`` (a node id or certificate name) in ``dir``. In a federation
    directory (it holds ca.key): a new CA-signed version of the list, which members
    gossip. In a node directory: appended to its local denied.txt only (unsigned,
    enforced by that node alone). Returns False if it was already there."""
    dir = Path(dir)
    entry = check_entry(entry)
    if (dir / CA_KEY).exists():
        return deny_in_federation(dir, entry) is not None
    if not (dir / CA_CERT).is_file():
        raise CredentialsError(f"{dir} is not a federation or node credentials directory "
                               f"(no {CA_CERT})")
    if entry in load_deny_list(dir):
        return False
    with _io_errors(dir), open(dir / DENY_FILE, "a+", encoding="utf-8") as f:
        f.seek(0, os.SEEK_END)
        if f.tell():
            f.seek(f.tell() - 1)
            if f.read(1) != "\n":
                f.write("\n")
        f.write(entry + "\n")
    return True


def load_deny_list(dir: Path) -> frozenset[str]:
    """The entries of ``dir/denied.txt`` (empty if there is no such file)."""
    path = Path(dir) / DENY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return frozenset()
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read the deny list {path}: {exc}") from exc
    return frozenset(token for line in text.splitlines()
                     for token in line.partition("#")[0].split())


class DenyList:
    """The entries in force on this node: the newest CA-signed list it knows, plus the
    local ``denied.txt`` (an unsigned, node-local addition, never gossiped).

    The signed list comes from ``dir/denied.signed`` (an admin may still copy it) or
    from a peer (:meth:`offer`); the newest version wins and is kept in memory only:
    a restarted sidecar learns it again from its file or its peers. Both files are
    re-read when they change (looked at every ``check_every`` s). A list that is not
    signed by the CA of ``dir/ca.crt`` is rejected, counted in ``rejected`` and logged
    once per source; the entries in force stay. Thread-safe.
    """

    def __init__(self, dir: Path, *, check_every: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.dir = Path(dir)
        self.path = self.dir / DENY_FILE
        self._ca = load_ca_public_key(self.dir)
        self._lock = threading.Lock()
        self._signed: SignedList | None = None
        self._local: frozenset[str] = frozenset()
        self._entries: frozenset[str] = frozenset()
        self._signed_watch = FileWatch([self.dir / SIGNED_DENY_FILE], check_every=check_every,
                                       clock=clock)
        self._local_watch = FileWatch([self.path], check_every=check_every, clock=clock)
        self._newest: Newest[SignedList] = Newest(lambda p: verify(p, self._ca), "deny list",
                                                  log)
        self._reload(signed_file=True, local_file=True)

    @property
    def version(self) -> int:
        """The version of the signed list in force (0: none)."""
        signed = self._signed
        return signed.version if signed else 0

    @property
    def payload(self) -> bytes | None:
        """The signed list in force, as signed (what peers are sent)."""
        signed = self._signed
        return signed.payload if signed else None

    def offer(self, payload: bytes, source: str) -> bool:
        """A signed list from ``source`` (a peer or a file): adopted if it verifies and
        is newer than the one in force. Never raises."""
        signed = self._newest.offer(payload, source)
        if signed is None:
            return False
        with self._lock:
            self._signed = signed
            self._entries = signed.entries | self._local
        log.info("deny list version %d from %s adopted: %d entries", signed.version,
                 source, len(signed.entries))
        return True

    @property
    def rejected(self) -> int:
        """Signed lists rejected (from peers or the file): bad signature, malformed."""
        return self._newest.rejected

    def _reload(self, *, signed_file: bool, local_file: bool) -> None:
        if signed_file:
            payload = read_or_none(self.dir / SIGNED_DENY_FILE, log)
            if payload is not None:
                self.offer(payload, str(self.dir / SIGNED_DENY_FILE))
        if local_file:
            try:
                local = load_deny_list(self.dir)
            except CredentialsError as exc:
                log.warning("%s; keeping the previous %d entries", exc, len(self._local))
                return
            with self._lock:
                self._local = local
                signed = self._signed
                self._entries = local | (signed.entries if signed else frozenset())

    def entries(self) -> frozenset[str]:
        signed_file, local_file = self._signed_watch.changed(), self._local_watch.changed()
        if signed_file or local_file:
            self._reload(signed_file=signed_file, local_file=local_file)
        return self._entries

    def __contains__(self, entry: object) -> bool:
        return entry in self.entries()


def make_authorizer(deny: DenyList | frozenset[str]
                    ) -> Callable[[grpc.ServicerContext, str], bool]:
    """An ``authorize(context, sender)`` for GossipTransport: False when the sender's
    node id or the peer certificate's CN is denied."""

    def authorize(context: grpc.ServicerContext, sender: str) -> bool:
        entries = deny if isinstance(deny, frozenset) else deny.entries()
        if not entries:
            return True
        if sender in entries:
            return False
        cn = auth_values(context, "x509_common_name")
        return not (set(cn) & entries)

    return authorize


