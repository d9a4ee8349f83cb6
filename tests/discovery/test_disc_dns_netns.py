"""DnsDiscovery against a real DNS server, through the system resolver: a dnslib
authoritative server on host 1 of a two-namespace lab, host 2's /etc/resolv.conf
pointing at it (``ip netns exec`` bind-mounts /etc/netns/NS/resolv.conf), and a probe
on host 2 printing its candidates as they change while the test rewrites the zone."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from disclab import JsonLines, candidates, make_lab, send, spawn
from netlab import Netlab, read_until

pytestmark = pytest.mark.slow

GOSSIP_PORT = 7422
NETNS_ETC = Path("/etc/netns")


@pytest.fixture
def lab() -> Iterator[Netlab]:
    pytest.importorskip("dnslib", reason="the DNS discovery test serves DNS with dnslib")
    yield from make_lab(2)


@pytest.fixture
def resolv_conf(lab: Netlab) -> Iterator[Path]:
    """Host 2 resolves through host 1 only; gone after the test."""
    made_root = not NETNS_ETC.exists()
    folder = NETNS_ETC / lab.hosts[1].netns
    folder.mkdir(parents=True)
    path = folder / "resolv.conf"
    path.write_text(f"nameserver {lab.hosts[0].ip}\noptions timeout:1 attempts:1\n")
    try:
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if made_root:
            with contextlib.suppress(OSError):
                NETNS_ETC.rmdir()


def write_zone(path: Path, zone: dict[str, list[str]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(zone))
    os.replace(tmp, path)  # the server never reads half a file


def test_dns_candidates_follow_the_records(lab: Netlab, resolv_conf: Path,
                                           tmp_path: Path) -> None:
    h1, h2 = lab.hosts
    name = f"peers-{lab.tag}.memnode.test"
    zone = tmp_path / "zone.json"
    peer = [f"{lab.prefix}.{i}" for i in (11, 12)]
    v6 = str(ipaddress.IPv6Address(f"fd77:{lab.tag[:4]}::12"))  # canonical: no leading 0s
    write_zone(zone, {f"{name}.": [h2.ip, peer[0]]})  # host 2 itself and one peer

    server = spawn(lab, h1.netns, "_dnsserver.py", [str(zone), h1.ip],
                   tmp_path / "dns.log")
    assert "ready" in read_until(server, "ready", 30), (tmp_path / "dns.log").read_text()

    # dns:NAME without a port: candidates at our own gossip port
    probe = spawn(lab, h2.netns, "_probe.py",
                  ["--discover", f"dns:{name}", "--node-id", "n2",
                   "--address", f"{h2.ip}:{GOSSIP_PORT}", "--dns-interval", "0.2"],
                  tmp_path / "probe.log")
    lines = JsonLines(probe, "probe on host 2")
    try:
        started = lines.wait(lambda s: True, "the probe to start", 30, event="started")
        assert started["name"] == f"dns:{name}"

        lines.wait(lambda s: candidates(s) == {f"{peer[0]}:{GOSSIP_PORT}"},
                   "the one peer (its own address skipped)", 15)

        write_zone(zone, {f"{name}.": [h2.ip, *peer, v6]})
        lines.wait(lambda s: candidates(s) == {f"{peer[0]}:{GOSSIP_PORT}",
                                               f"{peer[1]}:{GOSSIP_PORT}",
                                               f"[{v6}]:{GOSSIP_PORT}"},
                   "the added A and AAAA records", 15)

        write_zone(zone, {f"{name}.": [peer[1]]})
        lines.wait(lambda s: candidates(s) == {f"{peer[1]}:{GOSSIP_PORT}"},
                   "the vanished records to stop being proposed", 15)

        write_zone(zone, {})  # NXDOMAIN
        state = lines.wait(lambda s: s["stats"]["failures"].get("nxdomain", 0) >= 3
                           and not candidates(s), "NXDOMAIN, counted at every interval", 15)
        assert set(state["stats"]["failures"]) == {"nxdomain"}
        log = (tmp_path / "probe.log").read_text()
        assert log.count("resolution failed") == 1, log  # logged once, not per interval

        write_zone(zone, {f"{name}.": [peer[0]]})
        lines.wait(lambda s: candidates(s) == {f"{peer[0]}:{GOSSIP_PORT}"},
                   "the name to resolve again", 15)
        assert (tmp_path / "probe.log").read_text().count("resolving again") == 1

        send(probe, "stop")
        stopped = lines.wait(lambda s: True, "the probe to stop", 10, event="stopped")
        assert stopped["candidates"] == []
        assert probe.wait(10) == 0
    finally:
        for proc in (probe, server):
            if proc.stdin is not None:
                proc.stdin.close()
