"""SIGTERM and SIGINT as a :class:`threading.Event`, safely.

A Python signal handler runs in the main thread between two bytecodes, possibly while
that thread is inside ``Event.wait`` holding the event's internal lock: ``Event.set``
in the handler then waits for that lock forever, and the process ignores every later
signal (seen: a demo that no SIGTERM could stop). So the handler only writes a byte to
a pipe (the self-pipe trick; no Python lock involved), and a thread reading the pipe
sets the event.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading

log = logging.getLogger("memnode.server")


def shutdown_event() -> threading.Event:
    """An event set at the first SIGTERM or SIGINT (call from the main thread)."""
    done = threading.Event()
    read_fd, write_fd = os.pipe()

    def handler(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):  # a full pipe: a byte waits already
            os.write(write_fd, bytes([signum]))

    def follow() -> None:
        signum = os.read(read_fd, 1)
        log.info("signal %d: shutting down", signum[0] if signum else 0)
        done.set()

    threading.Thread(target=follow, name="memnode-signals", daemon=True).start()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return done
