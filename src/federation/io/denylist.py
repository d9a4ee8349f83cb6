"""The federation's deny list: members that may no longer speak to the mesh.

``denied.txt``: one entry per line, ``#`` starts a comment. An entry is a node id
(refused when it is the sender of a message) or a certificate name (the CN given to
``issue --name``: refused whatever node id it claims). Deny the certificate name too:
a member can make itself a new node id at will, but not a new certificate. Edit the
federation's copy (``memnode federation deny``), then copy it to every node directory;
:class:`DenyList` re-reads a changed file.
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
from federation.io.pki import CA_CERT, DENY_FILE, _io_errors
from federation.io.tls import auth_values

log = logging.getLogger("memnode.federation.deny")


def add_to_deny_list(dir: Path, entry: str) -> bool:
    """Append ``entry`` (a node id or certificate name) to ``dir``'s denied.txt.
    Returns False if it was already there."""
    dir = Path(dir)
    entry = entry.strip()
    if not entry or "#" in entry or any(c.isspace() or not c.isprintable() for c in entry):
        raise CredentialsError(f"not a node id or certificate name: {entry!r}")
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
    """``dir/denied.txt``, re-read when it changes (looked at every ``check_every`` s).

    Thread-safe. If the file becomes unreadable the last entries stay in force and
    a warning is logged.
    """

    def __init__(self, dir: Path, *, check_every: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(dir) / DENY_FILE
        self._check_every = check_every
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._entries = load_deny_list(Path(dir))
        self._checked = clock()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def entries(self) -> frozenset[str]:
        with self._lock:
            if self._clock() - self._checked >= self._check_every:
                self._checked = self._clock()
                stamp = self._stat()
                if stamp != self._stamp:
                    try:
                        self._entries = load_deny_list(self.path.parent)
                        self._stamp = stamp
                        log.info("deny list %s reloaded: %d entries", self.path,
                                 len(self._entries))
                    except CredentialsError as exc:
                        log.warning("%s; keeping the previous %d entries", exc,
                                    len(self._entries))
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


