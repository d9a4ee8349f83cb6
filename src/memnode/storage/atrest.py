"""Encryption at rest of own memories: one data key per memory, wrapped by the master key.

Every own memory's text and clear metadata are sealed together with AES-256-GCM under
a data key of its own (random, 32 bytes; the memory id is the associated data, so a
sealed blob cannot be moved to another memory). The data key is stored wrapped by the
node's master key (:mod:`memnode.storage.keywrap`) in the log's ``data_keys`` table
(SQLite ``secure_delete=ON``). ``forget`` deletes that row in the same durable
transaction as the forget and the log then checkpoints its WAL to zero length, so no
page of any file keeps the key: the forgotten text and metadata, whose ciphertext may
still sit in Chroma's soft-deleted pages until ``memnode compact``, can no longer be
opened (crypto-shredding).

What is sealed where: the journal's ``put`` rows, Chroma's ``memories`` collection
(the reserved metadata key ``_sealed``; no document) and the log's copy of own PUBLIC
events, whose metadata travel in clear (peers receive them opened). Metadata keys stay in clear, and
each value is stored beside the ciphertext as a keyed hash (HMAC-SHA256 under a
node-local *index key*, 16 bytes, base64url) so ``recall --where K=V`` still filters
by equality in Chroma; numbers compare as before (1 matches 1.0, True matches only
True). The index key is stored wrapped by the master key in ``<data_dir>/atrest.json``,
which is also the store's key check: a master key that does not unwrap it is refused
at start, before anything is written.

Limits: anyone holding the master key (hence the index key) can confirm a guessed
metadata value; hashes of forgotten memories' values stay in Chroma's soft-deleted
pages until ``compact``. Embeddings are not encrypted (Chroma searches them).
"""

from __future__ import annotations

import base64
import hmac
import itertools
import json
import os
import sqlite3
import struct
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from federation.io.files import replace_file
from memnode.errors import DataDirError
from memnode.node.domain import Metadata, MetaValue
from memnode.storage.keywrap import KeyWrapper, WrongKeyError, load_master_key

ATREST_FILE = "atrest.json"
SEALED = "_sealed"  # Chroma metadata key of the ciphertext
_DOMAIN = b"memnode.atrest.where.v1\x00"
_CACHE_MAX = 100_000  # data keys held unwrapped in memory (~20 MB)
_LEGACY = ("{d} was written without encryption at rest (text and metadata in clear). "
           "To encrypt it, with the node stopped: memnode backup OUT --data-dir {d}, then "
           "memnode restore OUT --data-dir NEW_DIR (see docs/STORAGE.md); nothing was "
           "changed")


class Sealer:
    """Seals and opens own memories; holds the index key and a bounded cache of
    unwrapped data keys. Key writes run inside the log's transaction (its connection);
    reads use a connection of their own, so recall never waits for a group commit.

    A forget must leave no copy of the key in the cache either, even one a concurrent
    read fetched before the forget committed: a read caches what it fetched only if no
    forget committed meanwhile (``_generation``), and each committed forget empties the
    cache (``take_destroyed``)."""

    def __init__(self, wrapper: KeyWrapper, index_key: bytes) -> None:
        self.wrapper = wrapper
        self._index = index_key
        self._cache: dict[str, tuple[bytes, bytes]] = {}  # memory id -> (key, wrapped)
        self._read: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._generation = 0
        self._destroyed = False

    def attach(self, log_path: Path) -> None:
        self._read = sqlite3.connect(log_path, check_same_thread=False, isolation_level=None)

    def close(self) -> None:
        if self._read is not None:
            self._read.close()
        self._cache.clear()

    def token(self, value: MetaValue) -> str:
        """The keyed hash stored for a metadata value (and asked for by a where)."""
        if isinstance(value, bool):
            raw = b"b1" if value else b"b0"
        elif isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            raw = b"i" + str(int(value)).encode("ascii")
        elif isinstance(value, float):
            raw = b"f" + struct.pack(">d", value)
        else:
            raw = b"s" + str(value).encode("utf-8", "surrogatepass")
        mac = hmac.digest(self._index, _DOMAIN + raw, "sha256")[:16]
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")

    def tokens(self, metadata: Mapping[str, MetaValue]) -> dict[str, str]:
        return {k: self.token(v) for k, v in metadata.items()}

    # -- data keys ----------------------------------------------------------------------

    def key_for_write(self, c: sqlite3.Connection, memory_id: str) -> bytes:
        """The memory's data key, made and stored (in ``c``'s transaction) if new."""
        cached = self._cache.get(memory_id)
        if cached is None:
            row = c.execute("SELECT wrapped FROM data_keys WHERE memory_id = ?",
                            (memory_id,)).fetchone()
            if row is not None:
                cached = (self.wrapper.unwrap(row[0]), bytes(row[0]))
            else:
                key = os.urandom(32)
                cached = (key, self.wrapper.wrap(key))
            self._remember(memory_id, cached)
        # also when cached: a rolled-back transaction may have lost the row
        c.execute("INSERT OR IGNORE INTO data_keys VALUES (?, ?)", (memory_id, cached[1]))
        return cached[0]

    def destroy(self, c: sqlite3.Connection, memory_id: str) -> None:
        """Delete the memory's data key (in ``c``'s transaction): crypto-shredding."""
        c.execute("DELETE FROM data_keys WHERE memory_id = ?", (memory_id,))
        with self._cache_lock:
            self._generation += 1
            self._cache.pop(memory_id, None)
        self._destroyed = True

    def take_destroyed(self) -> bool:
        """After a commit: True once if it destroyed keys (the log then empties its WAL);
        the cache is emptied of anything a read may have fetched before the commit."""
        destroyed, self._destroyed = self._destroyed, False
        if destroyed:
            with self._cache_lock:
                self._generation += 1
                self._cache.clear()
        return destroyed

    def _remember(self, memory_id: str, entry: tuple[bytes, bytes],
                  generation: int | None = None) -> None:
        with self._cache_lock:
            if generation is not None and generation != self._generation:
                return
            if len(self._cache) >= _CACHE_MAX:  # the oldest tenth goes (insertion order)
                for old in list(itertools.islice(self._cache, _CACHE_MAX // 10)):
                    del self._cache[old]
            self._cache[memory_id] = entry

    def keys(self, memory_ids: Sequence[str], c: sqlite3.Connection | None = None
             ) -> dict[str, bytes]:
        """The data keys of those memories that still have one (forgotten ones do not)."""
        out: dict[str, bytes] = {}
        for m in memory_ids:
            entry = self._cache.get(m)  # a concurrent clear may empty it: never index it
            if entry is not None:
                out[m] = entry[0]
        missing = [m for m in dict.fromkeys(memory_ids) if m not in out]
        generation = self._generation
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            sql = ("SELECT memory_id, wrapped FROM data_keys WHERE memory_id IN "
                   f"({','.join('?' * len(chunk))})")
            if c is not None:
                rows = c.execute(sql, chunk).fetchall()
            else:
                assert self._read is not None, "Sealer.attach first"
                with self._read_lock:
                    rows = self._read.execute(sql, chunk).fetchall()
            for m, wrapped in rows:
                out[m] = self.wrapper.unwrap(wrapped)
                if c is None:
                    self._remember(m, (out[m], bytes(wrapped)), generation)
        return out

    # -- sealing ------------------------------------------------------------------------

    @staticmethod
    def seal_bytes(key: bytes, memory_id: str, plain: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(key).encrypt(nonce, plain, memory_id.encode())

    @staticmethod
    def open_bytes(key: bytes, memory_id: str, sealed: bytes) -> bytes:
        try:
            return AESGCM(key).decrypt(sealed[:12], sealed[12:], memory_id.encode())
        except InvalidTag:
            raise DataDirError(f"memory {memory_id}: its ciphertext does not open "
                               "(altered or damaged)") from None

    def seal(self, key: bytes, memory_id: str, text: str, metadata: Metadata) -> str:
        plain = json.dumps([text, metadata], ensure_ascii=False, separators=(",", ":"))
        sealed = self.seal_bytes(key, memory_id, plain.encode("utf-8"))
        return base64.b64encode(sealed).decode("ascii")

    def open(self, key: bytes, memory_id: str, sealed: str) -> tuple[str, Metadata]:
        text, metadata = json.loads(self.open_bytes(key, memory_id, base64.b64decode(sealed)))
        return str(text), dict(metadata)


def in_clear(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds a store kept in clear (from before encryption at rest,
    or made with ``encrypt=False``): one :func:`open_atrest` refuses to encrypt."""
    path = data_dir / ATREST_FILE
    if path.is_file():
        try:
            return bool(json.loads(path.read_text()).get("mode") == "clear")
        except (OSError, ValueError, AttributeError):
            return False  # unreadable: open_atrest says so
    return (data_dir / "log.db").exists() or (data_dir / "chroma").exists()


def open_atrest(data_dir: Path, master_key_file: Path | None, env: Mapping[str, str], *,
                encrypt: bool = True, clear_ok: bool = False) -> Sealer | None:
    """The data directory's sealer, after its key check; a new store gets one (and its
    master key, when none is given). None for a store kept in clear: one created with
    ``encrypt=False`` (to measure the cost), or one from before encryption at rest,
    which only ``clear_ok`` callers (an offline backup) may open. Raises DataDirError
    before writing anything when the master key does not open the store."""
    path = data_dir / ATREST_FILE
    if path.is_file():
        try:
            info = json.loads(path.read_text())
            mode = info["mode"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataDirError(f"{path}: unreadable ({exc}); refusing to start") from None
        if mode == "clear":
            if encrypt and not clear_ok:
                raise DataDirError(_LEGACY.format(d=data_dir))
            return None
        wrapper = load_master_key(data_dir, master_key_file, env, create=False)
        try:
            index_key = wrapper.unwrap(base64.b64decode(info["index_key"]))
        except (WrongKeyError, ValueError, KeyError):
            raise DataDirError(
                f"the master key ({wrapper.describe()}) does not open the store in "
                f"{data_dir} (its key check in {ATREST_FILE} fails): start with the key it "
                "was created with; nothing was changed") from None
        return Sealer(wrapper, index_key)
    if (data_dir / "log.db").exists() or (data_dir / "chroma").exists():  # a store
        _readable(data_dir / "log.db")
        if clear_ok:
            return None
        raise DataDirError(_LEGACY.format(d=data_dir))
    if not encrypt:
        _write(path, {"format": 1, "mode": "clear"})
        return None
    wrapper = load_master_key(data_dir, master_key_file, env, create=True)
    index_key = os.urandom(32)
    _write(path, {"format": 1, "mode": "aes-256-gcm", "wrap": "aes-kw",
                  "index_key": base64.b64encode(wrapper.wrap(index_key)).decode("ascii")})
    return Sealer(wrapper, index_key)


def _readable(log: Path) -> None:
    """A log that is not one is reported as such, not as a store to encrypt (read-only)."""
    if not log.exists():
        return
    try:
        conn = sqlite3.connect(f"file:{log}?mode=ro", uri=True)
        try:
            conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DataDirError(f"{log}: log is unreadable ({exc}); refusing to start") from None


def _write(path: Path, info: dict[str, object]) -> None:
    replace_file(path, (json.dumps(info, indent=2) + "\n").encode())
