"""Delay every packet of an NFQUEUE queue by a fixed time (netem is not in this kernel).

    ip netns exec NS python -m bench._delayq --queue 10 --delay-ms 50 --seconds 600
    ip netns exec NS iptables -A OUTPUT -p tcp --dport 7422 -j NFQUEUE --queue-num 10 \\
        --queue-bypass

One thread: packets are verdicted (accepted) in arrival order once ``delay_ms`` has
passed, so order is kept. It prints ``ready`` once bound and exits after ``--seconds``
(or on SIGTERM), unbinding the queue; with ``--queue-bypass`` the traffic then flows
undelayed.
"""

from __future__ import annotations

import argparse
import collections
import select
import signal
import sys
import time
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    from netfilterqueue import NetfilterQueue

    delay = args.delay_ms / 1000.0
    held: collections.deque[tuple[float, Any]] = collections.deque()
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)

    def on_packet(pkt: Any) -> None:
        held.append((time.monotonic() + delay, pkt))

    queue = NetfilterQueue()
    queue.bind(args.queue, on_packet, max_len=65536)
    fd = queue.get_fd()
    print("ready", flush=True)
    end = time.monotonic() + args.seconds
    try:
        while not stop and time.monotonic() < end:
            now = time.monotonic()
            while held and held[0][0] <= now:
                held.popleft()[1].accept()
            wait = max(0.0, held[0][0] - now) if held else 0.2
            readable, _, _ = select.select([fd], [], [], wait)
            if readable:
                queue.run(block=False)
    finally:
        for _, pkt in held:
            pkt.accept()
        queue.unbind()
    return 0


if __name__ == "__main__":
    sys.exit(main())
