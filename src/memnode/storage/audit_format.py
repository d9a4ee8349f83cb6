"""The audit trail on disk, and its verification: read by the node at start and by
``memnode audit`` (which takes no lock: it reads a running node's files).

In ``<data_dir>/audit/``:

    000000000001.jsonl   segments, named by the number ``n`` of their first entry
    000000004711.jsonl   (zero-padded, so name order is chain order)
    ANCHOR               after a retention cut: where the kept chain starts

Each line is one entry, the canonical JSON (sorted keys, no spaces, UTF-8) of an object
with ``n`` (1, 2, 3...), ``prev`` (the ``hash`` of the entry before; 64 zeros before the
first), ``hash`` (SHA-256 hex of the canonical JSON of the entry without ``hash``) and
the entry's fields (see :mod:`memnode.api.audit`). Editing a line breaks its hash;
removing, inserting or reordering lines breaks the next line's ``prev`` and ``n``.

``ANCHOR`` is ``{"n": N, "prev": HASH, "ts": MS}``: the first kept entry is number N and
its ``prev`` is HASH. It is written (atomically) before old segments are deleted, and
the chain itself records each cut in an ``audit.retention`` entry carrying the same
anchor hash, so a verifier accepts an anchor only if the kept chain recorded it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

AUDIT_DIR = "audit"  # under the data dir
GENESIS = "0" * 64
SUFFIX = ".jsonl"
ANCHOR_FILE = "ANCHOR"
RETENTION = "audit.retention"

Entry = dict[str, Any]


def canonical(entry: Entry) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def digest(body: Entry) -> str:
    return hashlib.sha256(canonical(body)).hexdigest()


def seal(entry: Entry, n: int, prev: str) -> Entry:
    """``entry`` as number ``n`` of the chain after ``prev``, with its hash."""
    body = {**entry, "n": n, "prev": prev}
    return {**body, "hash": digest(body)}


def segment_name(first_n: int) -> str:
    return f"{first_n:012d}{SUFFIX}"


def first_n_of(path: Path) -> int | None:
    stem = path.name.removesuffix(SUFFIX)
    return int(stem) if path.name.endswith(SUFFIX) and stem.isdigit() else None


def segment_paths(directory: Path) -> list[Path]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    numbered = [(first_n_of(directory / n), directory / n) for n in names]
    return [p for first, p in sorted((f, p) for f, p in numbered if f is not None)]


def read_anchor(directory: Path) -> Entry | None:
    try:
        raw = (directory / ANCHOR_FILE).read_bytes()
    except FileNotFoundError:
        return None
    anchor = json.loads(raw)
    if not isinstance(anchor, dict) or not isinstance(anchor.get("n"), int) \
            or not isinstance(anchor.get("prev"), str):
        raise ValueError(f"{directory / ANCHOR_FILE}: not an audit anchor")
    return anchor


def write_anchor(directory: Path, anchor: Entry) -> None:
    tmp = directory / (ANCHOR_FILE + ".tmp")
    with tmp.open("wb") as f:
        f.write(canonical(anchor) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / ANCHOR_FILE)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Break:
    """The first place the chain does not hold."""

    where: str  # "audit/000000000001.jsonl:17", or the anchor file
    n: int | None  # the entry number expected there
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class Verdict:
    entries: int = 0
    first_n: int = 0
    head: str = GENESIS  # hash of the last intact entry
    segments: int = 0
    broken: Break | None = None
    anchor: Entry | None = None
    skipped: list[str] = field(default_factory=list)  # older than the anchor (cut pending)

    @property
    def intact(self) -> bool:
        return self.broken is None


def _check(raw: bytes, n: int, prev: str) -> tuple[Entry | None, str]:
    """The entry of one line and "" if it holds, else (None or entry, the reason)."""
    try:
        entry = json.loads(raw)
    except ValueError:
        return None, "not JSON (the line was edited or cut)"
    if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
        return None, "not an audit entry"
    body = {k: v for k, v in entry.items() if k != "hash"}
    if digest(body) != entry["hash"]:
        return entry, "its hash does not match its content (the line was edited)"
    if entry.get("prev") != prev:
        return entry, ("its prev hash is not the hash of the entry before it (a line "
                       "was removed, inserted or reordered)")
    if entry.get("n") != n:
        return entry, f"entry number {entry.get('n')}, expected {n} (lines missing)"
    return entry, ""


def verify(directory: Path, on_entry: Callable[[Entry], None] | None = None) -> Verdict:
    """Walk the chain from its anchor (or its start) to its end. Needs no lock: the
    segments are opened first (a segment deleted by retention afterwards stays readable),
    then the anchor is read; segments older than the anchor are skipped; a last line
    without its newline, at the very end, is being written and is not counted."""
    files: list[tuple[Path, BinaryIO]] = []
    with contextlib.ExitStack() as stack:
        for _ in range(5):
            files.clear()
            try:
                for path in segment_paths(directory):
                    files.append((path, stack.enter_context(path.open("rb"))))
                break
            except FileNotFoundError:  # retention removed one meanwhile: list again
                continue
        verdict = Verdict()
        try:
            verdict.anchor = read_anchor(directory)
        except ValueError as exc:
            verdict.broken = Break(ANCHOR_FILE, None, str(exc))
            return verdict
        n = verdict.anchor["n"] if verdict.anchor else 1
        prev = verdict.anchor["prev"] if verdict.anchor else GENESIS
        verdict.first_n, verdict.head = n, prev
        kept = []
        for path, f in files:
            if (first_n_of(path) or 0) < n:
                verdict.skipped.append(path.name)
            else:
                kept.append((path, f))
        recorded: set[str] = set()
        for index, (path, f) in enumerate(kept):
            where = f"{directory.name}/{path.name}"
            verdict.segments += 1
            if first_n_of(path) != n:
                verdict.broken = Break(where, n, f"the segment starts at entry {first_n_of(path)}"
                                       f", expected {n} (entries or a segment are missing)")
                return verdict
            last_segment = index == len(kept) - 1
            lines = f.read().split(b"\n")
            tail = lines.pop()  # b"" when the segment ends with a newline
            for lineno, raw in enumerate(lines, 1):
                entry, reason = _check(raw, n, prev)
                if reason:
                    verdict.broken = Break(f"{where}:{lineno}", n, reason)
                    return verdict
                assert entry is not None
                if entry.get("method") == RETENTION:
                    recorded.add(str(entry.get("anchor")))
                if on_entry is not None:
                    on_entry(entry)
                verdict.entries += 1
                n, prev = n + 1, entry["hash"]
                verdict.head = prev
            if tail and not last_segment:
                verdict.broken = Break(f"{where}:{len(lines) + 1}", n,
                                       "an incomplete line inside the chain")
                return verdict
        if verdict.anchor is not None and verdict.anchor["prev"] not in recorded:
            verdict.broken = Break(f"{directory.name}/{ANCHOR_FILE}", None,
                                   "no audit.retention entry of the kept chain records this "
                                   "anchor (segments were removed by hand?)")
        return verdict
