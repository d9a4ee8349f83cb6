"""SIGTERM and SIGINT as a :class:`threading.Event`, whichever thread they reach.

A Python-level signal handler runs only in the main thread, and only once that thread
executes bytecode again. A signal sent to the process is delivered to any one of its
threads: with gRPC's threads about, rarely the main one, which sits in ``Event.wait``
and may never wake (seen: a demo that no SIGINT or SIGTERM could stop). And a handler
calling ``Event.set`` can deadlock on the event's own lock if it interrupts the main
thread inside ``Event.wait``. So the C-level handler writes the signal number to a
pipe (``signal.set_wakeup_fd``; it does so in whatever thread the signal reached), and a
thread reading the pipe sets the event. The Python-level handlers do nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger("memnode.server")

STOP = (signal.SIGTERM, signal.SIGINT)


def shutdown_event() -> threading.Event:
    """An event set at the first SIGTERM or SIGINT. Call from the main thread, once."""
    done = threading.Event()
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def follow() -> None:
        while True:
            got = os.read(read_fd, 1)
            if not got or got[0] in STOP:
                log.info("signal %d: shutting down", got[0] if got else 0)
                done.set()
                return

    threading.Thread(target=follow, name="memnode-signals", daemon=True).start()
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    for signum in STOP:
        signal.signal(signum, lambda *_: None)
    return done
