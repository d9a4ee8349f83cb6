"""ZeroconfDiscovery between real hosts: four network namespaces on a bridge with real
multicast (../../shared/NETLAB.md). Hosts 1-3 are one federation, announced three ways
(a specific address; a wildcard address, so every non-loopback interface; a pinned
interface through the ``zeroconf:IP`` flag value); host 4 belongs to another
federation. Each runs the probe, which prints its candidates as JSON lines.

Checks: 1-3 find each other (and never themselves); host 4 is ignored by them and
counted once each as ``federation``, and proposes nobody; after host 2 stops cleanly,
its goodbye removes it from the others' candidates at once (well before any TTL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from disclab import JsonLines, State, candidates, make_lab, send, spawn
from netlab import Netlab

pytestmark = pytest.mark.slow

PORT = 7422
FED = "a" * 64
OTHER_FED = "b" * 64


def proposing(want: set[str], rejected: dict[str, int]) -> Callable[[State], bool]:
    def check(state: State) -> bool:
        return candidates(state) == want and state["stats"]["rejected"] == rejected
    return check


@pytest.fixture
def lab() -> Iterator[Netlab]:
    yield from make_lab(4)


@pytest.fixture
def lab1() -> Iterator[Netlab]:
    yield from make_lab(1)


def test_three_hosts_find_each_other_a_foreign_one_is_ignored_goodbye_removes(
        lab: Netlab, tmp_path: Path) -> None:
    h = lab.hosts
    setups = [  # (address, --discover value, federation)
        (f"{h[0].ip}:{PORT}", "zeroconf", FED),
        (f"0.0.0.0:{PORT}", "zeroconf", FED),
        (f"{h[2].ip}:{PORT}", f"zeroconf:{h[2].ip}", FED),
        (f"{h[3].ip}:{PORT}", "zeroconf", OTHER_FED),
    ]
    probes, lines = [], []
    for i, (address, spec, fed) in enumerate(setups):
        proc = spawn(lab, h[i].netns, "_probe.py",
                     ["--discover", spec, "--node-id", f"node{i + 1}-{lab.tag}",
                      "--address", address, "--fed", fed, "--proto", "1"],
                     tmp_path / f"probe{i + 1}.log")
        probes.append(proc)
        lines.append(JsonLines(proc, f"probe on host {i + 1}"))
    try:
        for i, ln in enumerate(lines):
            started = ln.wait(lambda s: True, "the probe to start", 30, event="started")
            assert started["interfaces"] == [h[i].ip], started

        want = {i: {f"{h[j].ip}:{PORT}" for j in range(3) if j != i} for i in range(3)}
        for i in range(3):
            state = lines[i].wait(proposing(want[i], {"federation": 1}),
                                  f"hosts {sorted(want[i])} proposed and host 4 refused", 20)
            assert f"{h[i].ip}:{PORT}" not in candidates(state)
        lines[3].wait(lambda s: s["stats"]["rejected"] == {"federation": 3},
                      "the three foreign announcements refused", 20)
        assert not candidates(lines[3].latest() or {})
        for i in range(4):  # refused once per peer, logged once per peer
            log = (tmp_path / f"probe{i + 1}.log").read_text()
            assert log.count(": federation") == (3 if i == 3 else 1), log

        send(probes[1], "stop")
        lines[1].wait(lambda s: True, "host 2 to stop", 10, event="stopped")
        assert probes[1].wait(10) == 0
        for i in (0, 2):
            lines[i].wait(proposing(want[i] - {f"{h[1].ip}:{PORT}"}, {"federation": 1}),
                          "host 2's goodbye to remove it", 10)
        assert not candidates(lines[3].latest() or {})
    finally:
        for proc in probes:
            if proc.stdin is not None and not proc.stdin.closed:
                proc.stdin.close()


def test_an_interface_not_on_the_host_fails_start_clearly(lab1: Netlab, tmp_path: Path
                                                          ) -> None:
    host = lab1.hosts[0]
    absent = f"{lab1.prefix}.99"
    proc = spawn(lab1, host.netns, "_probe.py",
                 ["--discover", f"zeroconf:{absent}", "--node-id", "n1",
                  "--address", f"0.0.0.0:{PORT}"], tmp_path / "probe.log")
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(30) != 0
    log = (tmp_path / "probe.log").read_text()
    assert f"zeroconf discovery cannot listen for mDNS on {absent}: No such device" in log, log
