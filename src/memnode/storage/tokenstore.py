"""The node's client tokens on disk: the signing key and the token list.

In the data directory, beside the node's identity key:

    client_tokens.key   32 random bytes (mode 0600): the HMAC-SHA256 token key
    tokens.json         the token list: id, name, scopes, times, revoked (never a token)
    tokens.lock         flock held while the key is created or the list rewritten

``memnode token issue / list / revoke`` work on these files while the node runs (they
take no data-directory lock). The list is rewritten whole (temporary file, fsync,
``os.replace``), so a reader sees the old list or the new one. The node re-reads it when
its identity changes (inode, size, mtime, ctime of ``os.stat``): one ``stat`` per call,
so a revocation applies to the very next call once ``memnode token revoke`` returns.
A token not on the list is refused: deleting the list revokes every token.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from federation.io.files import write_private_file
from memnode.errors import DataDirError, NotFound
from memnode.node import tokens
from memnode.node.tokens import Claims

KEY_FILE, LIST_FILE, LOCK_FILE = "client_tokens.key", "tokens.json", "tokens.lock"


@dataclass(frozen=True)
class TokenRecord:
    id: str
    name: str
    scopes: list[str]
    created_ms: int
    expires_ms: int  # 0: never
    revoked_ms: int = 0


class TokenStore:
    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir
        self.key_path = data_dir / KEY_FILE
        self.list_path = data_dir / LIST_FILE
        self._mutex = threading.Lock()
        self._seen: tuple[int, ...] | None = None
        self._revoked: dict[str, int] = {}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- the key ---------------------------------------------------------------------

    def key(self, create: bool = True) -> bytes:
        """The token key, created (mode 0600) on first use if ``create``."""
        if not self.key_path.exists() and create:
            with self._locked():
                if not self.key_path.exists():
                    tmp = self.key_path.with_suffix(".tmp")
                    tmp.unlink(missing_ok=True)
                    write_private_file(tmp, secrets.token_bytes(tokens.KEY_BYTES))
                    os.replace(tmp, self.key_path)
        try:
            key = self.key_path.read_bytes()
        except OSError as exc:
            raise DataDirError(f"{self.key_path}: cannot read the token key ({exc})") from None
        if len(key) != tokens.KEY_BYTES:
            raise DataDirError(f"{self.key_path}: not a token key ({len(key)} bytes, "
                               f"expected {tokens.KEY_BYTES}); refusing to start")
        return key

    # -- the list --------------------------------------------------------------------

    def records(self) -> list[TokenRecord]:
        try:
            raw = self.list_path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise DataDirError(f"{self.list_path}: unreadable ({exc})") from None
        try:
            return [TokenRecord(**r) for r in json.loads(raw)["tokens"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise DataDirError(f"{self.list_path}: not a token list ({exc})") from None

    def _write(self, records: list[TokenRecord]) -> None:
        data = json.dumps({"version": 1, "tokens": [asdict(r) for r in records]}, indent=1)
        tmp = self.list_path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        write_private_file(tmp, data.encode())
        os.replace(tmp, self.list_path)
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def issue(self, scopes: frozenset[str], now_ms: int, ttl_seconds: float = 0,
              name: str = "") -> tuple[str, TokenRecord]:
        """A new token (the only time it is shown) and its record on the list."""
        if ttl_seconds < 0:
            raise ValueError("--ttl must be a positive number of seconds")
        key = self.key()
        expires = now_ms + int(ttl_seconds * 1000) if ttl_seconds else 0
        record = TokenRecord(id=secrets.token_hex(8), name=name, scopes=sorted(scopes),
                             created_ms=now_ms, expires_ms=expires)
        token = tokens.sign(key, Claims(tokens.key_id(key), record.id, scopes, now_ms,
                                        expires))
        with self._locked():
            self._write([*self.records(), record])
        return token, record

    def revoke(self, token_id: str, now_ms: int) -> TokenRecord:
        with self._locked():
            records = self.records()
            for n, r in enumerate(records):
                if r.id == token_id:
                    if not r.revoked_ms:
                        records[n] = TokenRecord(**{**asdict(r), "revoked_ms": now_ms})
                        self._write(records)
                    return records[n]
        raise NotFound(f"no token {token_id!r} in {self.list_path} (`memnode token list`)")

    def revoked_ms(self, token_id: str) -> int | None:
        """What the list says now: None if not on it, 0 if live, else when revoked.
        One ``stat`` per call; the file is re-read only when it changed."""
        try:
            st = os.stat(self.list_path)
            seen: tuple[int, ...] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                                     st.st_ctime_ns)
        except FileNotFoundError:
            seen = ()
        with self._mutex:
            if seen != self._seen:
                records = self.records() if seen else []
                self._revoked = {r.id: r.revoked_ms for r in records}
                self._seen = seen
            return self._revoked.get(token_id)
