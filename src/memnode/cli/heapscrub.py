"""Freed memory scrubbed, so that no clear text reaches a file through Chroma's index.

Chroma's HNSW index (its hnswlib fork) allocates its buffers with ``malloc`` at full
capacity and writes them whole; the part past the live elements is whatever the
allocator handed back: freed memory of this process, which held request texts, TEAM
metadata values and keys in clear (chroma-core/chroma#7688, open). Encryption at rest
would leak through it: a kill -9'd node's ``data_level0.bin`` was seen holding every
one of its own texts.

By default Chroma runs in a process of its own (``--chroma process``,
:mod:`memnode.storage.chroma_calls`) that receives only what Chroma stores (sealed text,
keyed hashes), so its freed memory holds no clear text and the node's own heap never
reaches Chroma's files: neither is scrubbed. ``memnode serve --chroma inline`` puts
Chroma back in the node's process, and then serve runs with glibc's allocator told to
overwrite memory when it is freed and when it is handed out (``glibc.malloc.perturb``).
Its per-thread cache skips that, so it keeps only chunks of up to 256 bytes
(``glibc.malloc.tcache_max=256``): the index's buffers are larger (at Chroma's first
capacity of 100 vectors: 400 B of norms, 800 B of link pointers, 167 KB of vectors and
links; link lists it zeroes itself), and turning the cache off altogether made a
25-process mesh on 2 cores ten times slower (arena locks). Tunables are read when a
process starts: serve re-executes itself once, same pid, with them added to
``GLIBC_TUNABLES``. Memory from the kernel is zeroed already; Python's small-object
arenas are never handed to C code until unmapped. What it costs: README "Security".

A ``GLIBC_TUNABLES`` that already sets ``glibc.malloc.perturb`` (for instance ``=0``, to
measure the cost) is left as it is. On another C library nothing is set and a warning
says so.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from collections.abc import Mapping

__all__ = ["TUNABLES", "reexec_scrubbed", "scrubbed"]

log = logging.getLogger("memnode.node")

TUNABLES = "glibc.malloc.perturb=255:glibc.malloc.tcache_max=256"
_SET = "glibc.malloc.perturb="


def scrubbed(env: Mapping[str, str]) -> bool:
    """Whether a process started with ``env`` has its perturb tunable set (by us or
    deliberately by whoever started it)."""
    return _SET in env.get("GLIBC_TUNABLES", "")


def reexec_scrubbed() -> None:
    """Re-execute this process with freed memory scrubbed, unless it already is (or
    the C library is not glibc). Call before any thread starts."""
    if scrubbed(os.environ):
        return
    if platform.libc_ver()[0] != "glibc":
        log.warning("not glibc: freed memory is not scrubbed, and Chroma's index files "
                    "may hold some of it (texts in clear)")
        return
    current = os.environ.get("GLIBC_TUNABLES", "")
    env = {**os.environ, "GLIBC_TUNABLES": f"{current}:{TUNABLES}" if current else TUNABLES}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
