"""Wall-clock jumps for the chaos drill's processes (the clock driver).

Imported at start by every drill process (its directory leads PYTHONPATH). When
``CHAOS_CLOCK_FILE`` names a file, ``time.time`` and ``time.time_ns`` return the real
wall clock plus the offset in seconds that file holds, re-read at most every 0.1 s,
so writing the file makes a running process's wall clock jump. The monotonic clocks
are left alone, as a real wall-clock step leaves them. This covers what memnode reads
through Python (created_at, TTLs, token expiry, deny-list and erasure-order times, a
sidecar's incarnation); C code (gRPC's TLS certificate checks) keeps the real clock,
and so does gRPC's Python layer: it hands ``time.time()`` deadlines to its C core, so a
shifted one would make it wait out the step (a real step moves both alike).
It also makes SIGUSR2 dump every thread's stack to the process's log (the drill sends it
to a process that prints no ready line in time).

Why not libfaketime: Debian's 0.9.10 breaks Python 3.11's sleeps and timed waits
(``time.sleep`` raises EINVAL with the monotonic clock excluded, and ``Event.wait``
hangs with it faked), and a node waits on timers everywhere.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import time

_FILE = os.environ.get("CHAOS_CLOCK_FILE", "")

if _FILE:
    # a drill process that does not get ready in time is asked where its threads are
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    _real_time, _real_time_ns, _monotonic = time.time, time.time_ns, time.monotonic
    _offset_ns = 0
    _next_read = -1.0

    def _offset() -> int:
        global _offset_ns, _next_read
        now = _monotonic()
        if now >= _next_read:
            _next_read = now + 0.1
            try:
                with open(_FILE) as f:
                    _offset_ns = int(float(f.read().strip() or 0) * 1e9)
            except (OSError, ValueError):
                pass
        return _offset_ns

    def _shifted() -> bool:
        """Whether the caller of time.time sees the step: not gRPC, whose C core keeps
        the real clock (its Server.start polls a queue with ``deadline=time.time()``,
        which a forward step turned into a wait of the step's length)."""
        caller = sys._getframe(2)  # _shifted <- _time <- the caller (or Cython's caller)
        return not str(caller.f_globals.get("__name__", "")).startswith("grpc")

    def _time() -> float:
        return _real_time() + (_offset() / 1e9 if _shifted() else 0.0)

    def _time_ns() -> int:
        return _real_time_ns() + (_offset() if _shifted() else 0)

    time.time = _time
    time.time_ns = _time_ns
