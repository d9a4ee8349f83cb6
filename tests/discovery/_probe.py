"""A discovery probe, one per (namespaced) host: runs one adapter and prints, as JSON
lines on stdout, what it proposes each time that or its counters change.

    python _probe.py --discover SPEC --node-id ID --address HOST:PORT [--fed F]
                     [--proto N] [--dns-interval S] [--max-seconds S]

Lines: ``{"event": "started", ...}``, then ``{"event": "state", "candidates": [...],
"stats": {...}}``; on ``stop`` read from stdin (or stdin closing, or --max-seconds) it
stops the adapter, prints ``{"event": "stopped"}`` and exits. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from federation.io.discovery import parse_discover  # noqa: E402
from federation.ports import Announcement  # noqa: E402

POLL_SECONDS = 0.05  # how often counters are compared (they change without on_change)


def emit(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--discover", required=True)
    ap.add_argument("--node-id", required=True)
    ap.add_argument("--address", required=True)
    ap.add_argument("--fed", default="fed-test")
    ap.add_argument("--proto", type=int, default=1)
    ap.add_argument("--dns-interval", type=float, default=0.2)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s %(message)s")

    port = int(args.address.rpartition(":")[2])
    disc = parse_discover(args.discover, port, dns_interval_seconds=args.dns_interval)
    me = Announcement(args.node_id, args.address, args.fed, args.proto)
    changed, done = threading.Event(), threading.Event()

    def read_commands() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        done.set()

    threading.Thread(target=read_commands, daemon=True).start()
    disc.start(me, changed.set)
    emit({"event": "started", "name": disc.name,
          "interfaces": list(getattr(disc, "interfaces", ()))})
    last = None
    deadline = time.monotonic() + args.max_seconds
    while not done.is_set() and time.monotonic() < deadline:
        changed.wait(POLL_SECONDS)
        changed.clear()
        stats = disc.stats.snapshot()  # type: ignore[attr-defined]
        state = (sorted(disc.candidates()), stats["rejected"], stats["failures"])
        if state != last:
            last = state
            emit({"event": "state", "candidates": state[0], "stats": stats})
    disc.stop()
    emit({"event": "stopped", "candidates": sorted(disc.candidates())})
    return 0


if __name__ == "__main__":
    sys.exit(main())
