"""A tiny authoritative DNS server (dnslib) answering from a JSON zone file that the
test rewrites: ``{"name.": ["10.1.2.3", "fd00::3"], ...}``. A name absent from the
file is NXDOMAIN; a present name without records of the asked type is NODATA. The file
is read at every query, so a rewrite (atomic rename) takes effect at once.

    python _dnsserver.py ZONE_FILE LISTEN_IP [PORT]

Prints ``ready`` once listening; exits when stdin closes.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path
from typing import Any

from dnslib import AAAA, QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class ZoneFile(BaseResolver):  # type: ignore[misc]
    def __init__(self, path: Path) -> None:
        self.path = path

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        reply.header.aa = 1
        qname = str(request.q.qname).lower()
        try:
            zone = {k.lower(): v for k, v in json.loads(self.path.read_text()).items()}
        except (OSError, ValueError):
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if qname not in zone:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for text in zone[qname]:
            ip = ipaddress.ip_address(text)
            if ip.version == 4 and request.q.qtype in (QTYPE.A, QTYPE.ANY):
                reply.add_answer(RR(qname, QTYPE.A, rdata=A(text), ttl=0))
            elif ip.version == 6 and request.q.qtype in (QTYPE.AAAA, QTYPE.ANY):
                reply.add_answer(RR(qname, QTYPE.AAAA, rdata=AAAA(text), ttl=0))
        return reply


def main() -> int:
    zone, listen = Path(sys.argv[1]), sys.argv[2]
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 53
    quiet = DNSLogger("-request,-reply,-truncated,-recv,-send,-data", prefix=False)
    udp = DNSServer(ZoneFile(zone), port=port, address=listen, logger=quiet)
    tcp = DNSServer(ZoneFile(zone), port=port, address=listen, logger=quiet, tcp=True)
    udp.start_thread()
    tcp.start_thread()
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or kills us)
    udp.stop()
    tcp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
