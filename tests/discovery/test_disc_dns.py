"""DnsDiscovery against a resolver twin: answers that change, our own addresses,
failures counted and logged once per state change, on_change only on change, a
prompt stop."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterable

import pytest

from federation.io.discovery import DnsDiscovery
from federation.io.discovery.dns import failure_reason
from federation.ports import Announcement, Discovery

NAME = "peers.memnode.test"
ME = Announcement("node-a", "10.0.0.1:7422", "fed", 1)
LOGGER = "memnode.sidecar.discovery"


def nxdomain() -> OSError:
    return socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def timeout() -> OSError:
    return socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


class ResolverTwin:
    """Answers from ``answer`` (a list of addresses or an exception to raise); counts
    calls and wakes waiters on each one."""

    def __init__(self, answer: list[str] | BaseException) -> None:
        self.answer = answer
        self.calls = 0
        self.names: list[str] = []
        self.times: list[float] = []
        self.cond = threading.Condition()

    def __call__(self, name: str) -> Iterable[str]:
        with self.cond:
            self.calls += 1
            self.names.append(name)
            self.times.append(time.monotonic())
            self.cond.notify_all()
            answer = self.answer
        if isinstance(answer, BaseException):
            raise answer
        return list(answer)

    def wait_calls(self, n: int, timeout: float = 5.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.calls >= n, timeout), (
                f"the resolver was called {self.calls} times, waited for {n}")


class Changes:
    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        self.event.set()


def local() -> frozenset[str]:
    return frozenset({"127.0.0.1", "::1", "10.0.0.1", "192.168.5.5"})


def make(answer: list[str] | BaseException, port: int = 7422
         ) -> tuple[DnsDiscovery, ResolverTwin, Changes]:
    twin = ResolverTwin(answer)
    disc = DnsDiscovery(NAME, port, 3600, resolver=twin, local_addresses=local)
    changes = Changes()
    # bound without the thread: rounds are driven by resolve_once
    disc._me, disc._on_change = ME, changes
    return disc, twin, changes


def test_addresses_added_and_removed_own_skipped_on_change_only_on_change() -> None:
    disc, twin, changes = make(["10.0.0.2", "10.0.0.1", "192.168.5.5", "127.0.0.1",
                                "10.0.0.3", "10.0.0.3", "fd00::4", "::1"])
    disc.resolve_once()
    assert disc.candidates() == {"10.0.0.2:7422", "10.0.0.3:7422", "[fd00::4]:7422"}
    assert changes.count == 1 and twin.names == [NAME]
    disc.resolve_once()  # same answer: no change reported
    assert changes.count == 1
    twin.answer = ["10.0.0.3", "fd00::4", "10.0.0.5"]  # .2 vanished, .5 appeared
    disc.resolve_once()
    assert disc.candidates() == {"10.0.0.3:7422", "10.0.0.5:7422", "[fd00::4]:7422"}
    assert changes.count == 2
    twin.answer = ["10.0.0.1"]  # only ourselves left
    disc.resolve_once()
    assert disc.candidates() == frozenset() and changes.count == 3
    snap = disc.stats.snapshot()
    assert snap["lookups"] == 4 and snap["changes"] == 3 and snap["failures"] == {}


def test_candidates_use_the_given_port() -> None:
    disc, _, _ = make(["10.0.0.2"], port=9000)
    disc.resolve_once()
    assert disc.candidates() == {"10.0.0.2:9000"}
    assert disc.name == f"dns:{NAME}"


def test_a_specific_announced_host_is_skipped_even_if_not_local() -> None:
    twin = ResolverTwin(["10.9.9.9", "10.0.0.2"])
    disc = DnsDiscovery(NAME, 7422, 3600, resolver=twin, local_addresses=frozenset)
    disc._me = Announcement("n", "10.9.9.9:7422", "fed", 1)  # e.g. behind a NAT
    disc.resolve_once()
    assert disc.candidates() == {"10.0.0.2:7422"}


def test_failures_are_counted_and_logged_once_per_state_change(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    disc, twin, changes = make(["10.0.0.2"])
    disc.resolve_once()
    assert disc.state == "ok" and changes.count == 1

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    twin.answer = timeout()  # transient: the last known set is kept
    for _ in range(4):
        disc.resolve_once()
    assert disc.candidates() == {"10.0.0.2:7422"} and changes.count == 1
    assert disc.state == "timeout"
    assert len(warnings()) == 1 and "timeout" in warnings()[0]

    twin.answer = nxdomain()  # an answer: there are no such peers
    for _ in range(3):
        disc.resolve_once()
    assert disc.candidates() == frozenset() and changes.count == 2
    assert len(warnings()) == 2 and "nxdomain" in warnings()[1]

    twin.answer = ValueError("a resolver bug")  # anything else: counted, never raised
    disc.resolve_once()
    disc.resolve_once()
    assert len(warnings()) == 3 and "error" in warnings()[2]
    assert disc.stats.snapshot()["failures"] == {"timeout": 4, "nxdomain": 3, "error": 2}

    twin.answer = ["10.0.0.2"]
    caplog.clear()
    disc.resolve_once()
    disc.resolve_once()
    assert disc.state == "ok" and disc.candidates() == {"10.0.0.2:7422"}
    assert changes.count == 3
    again = [r.getMessage() for r in caplog.records if "resolving again" in r.getMessage()]
    assert len(again) == 1 and warnings() == []


def test_failure_reasons() -> None:
    assert failure_reason(nxdomain()) == "nxdomain"
    assert failure_reason(socket.gaierror(socket.EAI_NODATA, "no data")) == "nxdomain"
    assert failure_reason(timeout()) == "timeout"
    assert failure_reason(TimeoutError()) == "timeout"
    assert failure_reason(socket.gaierror(socket.EAI_FAIL, "x")) == "error"
    assert failure_reason(RuntimeError()) == "error"


def test_the_thread_resolves_every_interval_and_stop_is_prompt() -> None:
    twin = ResolverTwin(["10.0.0.2"])
    disc: Discovery = DnsDiscovery(NAME, 7422, 0.01, resolver=twin, local_addresses=local)
    changes = Changes()
    disc.start(ME, changes)
    assert changes.event.wait(5), "the first resolution did not report its candidates"
    twin.wait_calls(5)  # re-resolved on the timer
    assert changes.count == 1  # the same answer every time
    with twin.cond:
        twin.answer = ["10.0.0.2", "10.0.0.7"]
        changes.event.clear()
    assert changes.event.wait(5), "a new address was not reported"
    assert disc.candidates() == {"10.0.0.2:7422", "10.0.0.7:7422"}
    disc.stop()
    assert disc.candidates() == frozenset()


def test_stop_ends_a_long_interval_at_once() -> None:
    twin = ResolverTwin(["10.0.0.2"])
    disc = DnsDiscovery(NAME, 7422, 3600, resolver=twin, local_addresses=local)
    disc.start(ME, lambda: None)
    twin.wait_calls(1)
    thread = disc._thread
    assert thread is not None and thread.is_alive()
    t0 = time.monotonic()
    disc.stop()
    assert time.monotonic() - t0 < 0.5 and not thread.is_alive()
    assert twin.calls == 1
    disc.stop()  # idempotent


def test_a_failing_resolver_never_spins() -> None:
    twin = ResolverTwin(nxdomain())
    disc = DnsDiscovery(NAME, 7422, 0.05, resolver=twin, local_addresses=local)
    disc.start(ME, lambda: None)
    twin.wait_calls(4)
    disc.stop()
    gaps = [b - a for a, b in zip(twin.times, twin.times[1:], strict=False)]
    assert min(gaps) >= 0.045, f"attempts closer than the interval: {gaps}"
    assert disc.stats.snapshot()["failures"] == {"nxdomain": twin.calls}


def test_an_on_change_that_raises_does_not_stop_the_thread(
        caplog: pytest.LogCaptureFixture) -> None:
    twin = ResolverTwin(["10.0.0.2"])
    disc = DnsDiscovery(NAME, 7422, 0.01, resolver=twin, local_addresses=local)
    boom = threading.Event()

    def on_change() -> None:
        boom.set()
        raise RuntimeError("sidecar bug")

    disc.start(ME, on_change)
    assert boom.wait(5)
    n = twin.calls
    twin.wait_calls(n + 2)  # still resolving
    disc.stop()
    assert any("on_change callback failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("name", "port", "interval"), [
    ("", 7422, 1.0), ("a..b", 7422, 1.0), ("a" * 64 + ".b", 7422, 1.0),
    ("ok.name", 0, 1.0), ("ok.name", 65536, 1.0), ("ok.name", 7422, 0.0),
    ("ok.name", 7422, -1.0)])
def test_bad_arguments(name: str, port: int, interval: float) -> None:
    with pytest.raises(ValueError):
        DnsDiscovery(name, port, interval)


def test_the_system_resolver_reads_etc_hosts() -> None:
    disc = DnsDiscovery("localhost", 7422, 3600, local_addresses=frozenset)
    disc._me = Announcement("n", "10.0.0.1:7422", "fed", 1)
    disc.resolve_once()
    assert "127.0.0.1:7422" in disc.candidates()
