"""Following a node's memory stream from the client side (``Client.watch``).

    with Client() as c, c.watch(scope="mesh", from_version_vector=saved) as w:
        for change in w:
            print(change.kind, change.memory.id, change.memory.text)
            saved = w.version_vector  # resume from here after a disconnect

Each :class:`Change` carries its position ``(origin, seq)``; :attr:`Watch.version_vector`
is the highest seq received per origin, so a new watch from it misses nothing and
repeats nothing. The iterator ends when the watch is closed or the node shuts down.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from memnode.errors import InvalidArgument, MemnodeError
from memnode.v1 import memnode_pb2 as pb

if TYPE_CHECKING:
    from memnode.client import Memory

KINDS = {pb.CHANGE_PUT: "put", pb.CHANGE_UPDATE: "update", pb.CHANGE_FORGET: "forget"}


@dataclass(frozen=True)
class Change:
    kind: str  # put, update or forget
    origin: str
    seq: int
    memory: Memory  # own memories with text; replicas without; a forget: id and times

    def to_json(self) -> dict[str, Any]:
        memory = {k: v for k, v in self.memory.__dict__.items() if k != "expires_at_ms"}
        return {"kind": self.kind, "origin": self.origin, "seq": self.seq, **memory}


def version_vector(value: Mapping[str, Any] | None) -> dict[str, int]:
    """A resume vector (origin -> highest seq seen), checked; InvalidArgument if it is
    not one."""
    out: dict[str, int] = {}
    for origin, seq in (value or {}).items():
        if not isinstance(origin, str) or not origin or isinstance(seq, bool) or not (
                isinstance(seq, int) and 0 <= seq < 1 << 63):
            raise InvalidArgument(f"a version vector maps origin node ids to seqs >= 0; "
                                  f"got {origin!r}: {seq!r}")
        out[origin] = seq
    return out


def parse_version_vector(text: str) -> dict[str, int]:
    """``--from``: a JSON object (``{"origin": seq}``, as ``memnode status --json`` shows
    one) or ``ORIGIN=SEQ[,ORIGIN=SEQ...]``."""
    text = text.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"--from is not valid JSON ({exc.msg})") from None
        if not isinstance(parsed, dict):
            raise InvalidArgument("--from expects a JSON object {\"origin\": seq}")
        return version_vector(parsed)
    out: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        origin, sep, seq = item.partition("=")
        if not sep or not origin or not seq.isdigit():
            raise InvalidArgument(f"--from expects ORIGIN=SEQ[,ORIGIN=SEQ...] or a JSON "
                                  f"object; got {item!r}")
        out[origin.strip()] = int(seq)
    return version_vector(out)


class Watch:
    """An open Watch stream: iterate for :class:`Change` items; ``close()`` ends it."""

    def __init__(self, call: Any, start: Mapping[str, int],
                 memory: Callable[[pb.Memory], Memory],
                 error: Callable[[grpc.RpcError], MemnodeError]) -> None:
        self._call = call
        self._memory = memory
        self._error = error
        self._closed = False
        self.version_vector: dict[str, int] = dict(start)

    def __iter__(self) -> Iterator[Change]:
        return self

    def __next__(self) -> Change:
        try:
            msg = next(self._call)
        except grpc.RpcError as exc:
            if self._closed and exc.code() == grpc.StatusCode.CANCELLED:  # type: ignore[attr-defined]
                raise StopIteration from None
            raise self._error(exc) from exc
        if msg.seq > self.version_vector.get(msg.origin, 0):
            self.version_vector[msg.origin] = msg.seq
        return Change(kind=KINDS.get(msg.kind, str(msg.kind)), origin=msg.origin,
                      seq=msg.seq, memory=self._memory(msg.memory))

    def close(self) -> None:
        self._closed = True
        self._call.cancel()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
