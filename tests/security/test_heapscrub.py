"""Freed memory scrubbed (memnode.cli.heapscrub): Chroma's index files are written
from malloc'd buffers at full capacity, so what the allocator hands out in the process
that runs Chroma must hold no freed clear text. The mechanism on this machine's C
library, with a control that shows the leak without it; a node serving with Chroma in
its own process runs with it, and by default neither the node nor its Chroma process
(which receives no clear text) is scrubbed."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from memnode.cli.heapscrub import TUNABLES, scrubbed

from helpers import NodeProcess, child_pids

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="the tunables are glibc's; elsewhere serve warns")

_PROBE = r"""
import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
secret = b"canary-text-0123456789abcdef"
leaked = []
for size in (64, 400, 1000, 5000, 100_000, 167_600):  # tcache, bins, an index's buffer
    p = libc.malloc(size)
    ctypes.memmove(p, secret * (size // len(secret) + 1), size)
    libc.malloc(64)  # keeps p from merging into the top chunk
    libc.free(p)
    if secret in ctypes.string_at(libc.malloc(size), size):
        leaked.append(size)
print(leaked)
"""


def _leaked_sizes(tunables: str | None) -> list[int]:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if tunables is not None:
        env["GLIBC_TUNABLES"] = tunables
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return [int(x) for x in out.strip().strip("[]").split(",") if x.strip()]


def test_freed_memory_comes_back_without_its_contents_only_when_scrubbed() -> None:
    assert _leaked_sizes(None), "control: malloc hands back freed contents as they were"
    # perturb alone misses the per-thread cache's chunks (up to 1,032 bytes): an HNSW
    # index's 400-byte norms buffer could be one
    assert set(_leaked_sizes("glibc.malloc.perturb=255")) & {400, 1000}
    # what the cache keeps with ours: chunks of at most 256 bytes, smaller than any
    # buffer the index writes whole
    assert all(size <= 256 for size in _leaked_sizes(TUNABLES))


def _tunables(pid: int) -> list[bytes]:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return [e for e in environ if e.startswith(b"GLIBC_TUNABLES=")]


def test_by_default_neither_the_node_nor_its_chroma_process_is_scrubbed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    node = NodeProcess(tmp_path / "n").start()
    try:
        assert node.proc is not None
        children = child_pids(node.proc.pid)
        assert len(children) == 1 and b"chroma_calls" in Path(
            f"/proc/{children[0]}/cmdline").read_bytes()
        assert _tunables(node.proc.pid) == [] and _tunables(children[0]) == []
    finally:
        assert node.terminate() == 0


def test_a_node_with_chroma_inline_runs_scrubbed_in_the_same_process(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n", ["--chroma", "inline"]).start()
    try:
        assert node.proc is not None
        tunables = _tunables(node.proc.pid)
        # the pid we started, re-executed; /proc shows the string as far as the dynamic
        # loader's parser left it (it cuts it at the first ':' in place)
        assert len(tunables) == 1
        assert (b"GLIBC_TUNABLES=" + TUNABLES.encode()).startswith(tunables[0])
        assert tunables[0].startswith(b"GLIBC_TUNABLES=glibc.malloc.perturb=255")
        with node.client() as client:
            assert client.status().node_id
    finally:
        assert node.terminate() == 0


def test_a_tunable_set_on_purpose_is_left_as_it_is(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.perturb=0")
    assert scrubbed(os.environ)
    node = NodeProcess(tmp_path / "n", ["--chroma", "inline"]).start()
    try:
        assert node.proc is not None
        environ = Path(f"/proc/{node.proc.pid}/environ").read_bytes().split(b"\0")
        assert b"GLIBC_TUNABLES=glibc.malloc.perturb=0" in environ
    finally:
        assert node.terminate() == 0
