"""Versioned metadata keys: rotation without downtime.

A node holds one or more :class:`~federation.io.metakey.MetadataKey` s, each with an
id. The *current* key hashes the TEAM metadata of new writes; every key held still
matches in ``recall --where`` (the wanted value is hashed under each), so replicas
hashed under an older key are found during the overlap. Rotation, run from the
federation directory and copied to every member (docs/OPERATIONS.md)::

    memnode federation key add DIR       a new key, held but not yet current
    memnode federation key use DIR ID    the new key hashes new writes; every node
                                         re-publishes its own TEAM metadata under it
    memnode federation key retire DIR ID the old key is no longer matched

Key file format (``metadata.key``): one key per line, ``ID HEX`` with 64 hex
characters, the current one followed by the word ``current``; ``#`` starts a comment.
A file holding a single key in the first format (32 raw bytes, hex or base64; what
``memnode federation init`` writes) is key id 0, current: old files keep working.

:class:`KeyFile` re-reads the file when it changes (:class:`~federation.io.filewatch.
FileWatch`, the mechanism the deny list uses); a file that does not parse is refused,
logged and counted, and the keys in force stay. Error messages never include key
material.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from federation.errors import MetadataKeyError
from federation.events import MetaValue
from federation.io.files import replace_file
from federation.io.filewatch import FileWatch
from federation.io.metakey import Metadata, MetadataKey, _parse_file, _parse_hex

log = logging.getLogger("memnode.federation.keys")

__all__ = ["KeyFile", "MetadataKeys"]

MAX_KEYS = 16
_HEADER = """\
# memnode metadata keys: "ID HEX" per line. The key marked "current" hashes the TEAM
# metadata of new writes; the others are still matched by --where until retired.
# Rotate with `memnode federation key add|use|retire FEDERATION_DIR` (docs/OPERATIONS.md).
"""


class MetadataKeys:
    """The keys a node holds, by id, and which one is current. Immutable."""

    __slots__ = ("_keys", "current_id", "source")

    def __init__(self, keys: Mapping[int, MetadataKey], current_id: int, *,
                 source: str = "given") -> None:
        if current_id not in keys:
            raise MetadataKeyError(f"current metadata key id {current_id} is not held")
        if len(keys) > MAX_KEYS:
            raise MetadataKeyError(f"at most {MAX_KEYS} metadata keys, got {len(keys)}: "
                                   "retire old ones")
        if len({k.fingerprint() for k in keys.values()}) != len(keys):
            raise MetadataKeyError("the same metadata key is held under two ids")
        self._keys = dict(sorted(keys.items()))
        self.current_id = current_id
        self.source = source

    # -- construction -------------------------------------------------------------

    @classmethod
    def single(cls, key: MetadataKey) -> MetadataKeys:
        return cls({0: key}, 0, source=key.describe())

    @classmethod
    def load(cls, path: Path | None, env: Mapping[str, str]) -> MetadataKeys:
        """The keys of the file at ``path``; without one, the key of the environment
        or the development key (id 0), as :meth:`MetadataKey.load` finds it."""
        if path is None:
            return cls.single(MetadataKey.load(None, env))
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise MetadataKeyError(
                f"metadata key file {path}: cannot read ({exc.strerror or exc})") from exc
        return cls.parse(data, where=f"metadata key file {path}")

    @classmethod
    def parse(cls, data: bytes, *, where: str) -> MetadataKeys:
        lines = _key_lines(data)
        if lines is None:
            return cls({0: MetadataKey(_parse_file(data, where=where), source=where)}, 0,
                       source=where)
        keys: dict[int, MetadataKey] = {}
        current: list[int] = []
        for number, tokens in lines:
            if len(tokens) not in (2, 3) or not tokens[0].isdigit() or (
                    len(tokens) == 3 and tokens[2] != "current"):
                raise MetadataKeyError(f"{where}, line {number}: expected 'ID HEX' or "
                                       "'ID HEX current'")
            key_id = int(tokens[0])
            if key_id in keys:
                raise MetadataKeyError(f"{where}, line {number}: key id {key_id} twice")
            keys[key_id] = MetadataKey(_parse_hex(tokens[1], where=f"{where}, line {number}"),
                                       source=where)
            if len(tokens) == 3:
                current.append(key_id)
        if len(current) != 1:
            raise MetadataKeyError(f"{where}: exactly one key must be marked current, "
                                   f"found {len(current)}")
        return cls(keys, current[0], source=where)

    def dumps(self) -> str:
        lines = [f"{key_id} {key.secret_hex()}" + (" current" if key_id == self.current_id
                                                 else "")
                 for key_id, key in self._keys.items()]
        return _HEADER + "\n".join(lines) + "\n"

    def write(self, path: Path) -> None:
        """Replace ``path`` atomically (a new file, mode 0600, renamed over it)."""
        if self.current.is_development:
            raise ValueError("refusing to write the development metadata key to a file")
        replace_file(Path(path), self.dumps().encode("ascii"))

    # -- rotation -----------------------------------------------------------------

    def add(self) -> MetadataKeys:
        """A new random key, held, not current (id: one above the highest)."""
        new_id = max(self._keys) + 1
        return MetadataKeys({**self._keys, new_id: MetadataKey.generate()}, self.current_id,
                            source=self.source)

    def use(self, key_id: int) -> MetadataKeys:
        self._held(key_id)
        return MetadataKeys(self._keys, key_id, source=self.source)

    def retire(self, key_id: int) -> MetadataKeys:
        self._held(key_id)
        if key_id == self.current_id:
            raise MetadataKeyError(f"key {key_id} is current: `use` another one first")
        return MetadataKeys({i: k for i, k in self._keys.items() if i != key_id},
                            self.current_id, source=self.source)

    def _held(self, key_id: int) -> None:
        if key_id not in self._keys:
            raise MetadataKeyError(f"no metadata key {key_id} (held: "
                                   f"{', '.join(map(str, self._keys))})")

    # -- use ------------------------------------------------------------------------

    @property
    def current(self) -> MetadataKey:
        return self._keys[self.current_id]

    @property
    def ids(self) -> list[int]:
        return list(self._keys)

    @property
    def is_development(self) -> bool:
        return self.current.is_development

    def describe(self) -> str:
        return self.source

    def fingerprint(self) -> str:
        """The current key's fingerprint."""
        return self.current.fingerprint()

    def fingerprints(self) -> dict[int, str]:
        return {key_id: key.fingerprint() for key_id, key in self._keys.items()}

    def shared_form(self, metadata: Metadata, privacy: int) -> Metadata:
        """The metadata as it leaves this node, TEAM values hashed under the current key."""
        return self.current.shared_form(metadata, privacy)

    def hashes(self, value: MetaValue) -> dict[int, str]:
        """The value's hash under each key held, by key id."""
        return {key_id: key.hash_value(value) for key_id, key in self._keys.items()}

    def match_values(self, value: MetaValue) -> list[MetaValue]:
        """The value itself and its hash under every key held (current first)."""
        hashes = self.hashes(value)
        current = hashes.pop(self.current_id)
        return [value, current, *hashes.values()]

    def __repr__(self) -> str:
        return (f"MetadataKeys(current={self.current_id}, held={self.ids}, "
                f"fingerprint={self.fingerprint()})")


def _key_lines(data: bytes) -> list[tuple[int, list[str]]] | None:
    """The lines of a key file in the ``ID HEX`` format, or None for a single key."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    lines = [(n, line.partition("#")[0].split()) for n, line in
             enumerate(text.splitlines(), 1)]
    lines = [(n, tokens) for n, tokens in lines if tokens]
    if not any(len(tokens) >= 2 for _, tokens in lines):
        return None
    return lines


class KeyFile:
    """The metadata keys in force on a node, from a file re-read when it changes.

    Without a file (the environment's or the development key) nothing is watched.
    ``reloads`` counts the new versions adopted, ``rejected`` those refused (the keys in
    force stay). Thread-safe."""

    def __init__(self, path: Path | None, env: Mapping[str, str], *,
                 check_every: float = 1.0, settle: float = 0.3) -> None:
        self.path = Path(path) if path is not None else None
        self._watch = (FileWatch([self.path], check_every=check_every, settle=settle)
                       if self.path is not None else None)
        self._keys = MetadataKeys.load(self.path, env)
        self._lock = threading.Lock()
        self.reloads = 0
        self.rejected = 0

    def keys(self) -> MetadataKeys:
        """The keys in force, after re-reading the file if it changed."""
        if self._watch is not None and self._watch.changed():
            self._reload()
        return self._keys

    def _reload(self) -> None:
        before = self._keys
        try:
            keys = MetadataKeys.load(self.path, os.environ)
        except MetadataKeyError as exc:
            with self._lock:
                self.rejected += 1
            log.error("metadata keys not reloaded: %s; keeping key %d (fingerprint %s) and "
                      "ids %s", exc, before.current_id, before.fingerprint(), before.ids)
            return
        with self._lock:
            self._keys = keys
            self.reloads += 1
        log.info("metadata keys reloaded from %s: current %d (fingerprint %s), held %s "
                    "(were current %d, held %s)", self.path, keys.current_id,
                    keys.fingerprint(), keys.ids, before.current_id, before.ids)

    # The node hashes and matches through these (always the keys in force).

    @property
    def is_development(self) -> bool:
        return self.keys().is_development

    def describe(self) -> str:
        return self.keys().describe()

    def fingerprint(self) -> str:
        return self.keys().fingerprint()

    def hash_value(self, value: MetaValue) -> str:
        return self.keys().current.hash_value(value)

    def shared_form(self, metadata: Metadata, privacy: int) -> Metadata:
        return self.keys().shared_form(metadata, privacy)

    def match_values(self, value: MetaValue) -> list[MetaValue]:
        return self.keys().match_values(value)
