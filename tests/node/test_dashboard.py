"""The status dashboard's JSON and page, on a node's HTTP port (in-process node)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from types import SimpleNamespace
from typing import Any

import pytest

from memnode.api.dashboard import StatusBoard

from helpers import ROOT, FakeClock, NodeHandle


def _get(handle: NodeHandle, path: str) -> tuple[int, str, bytes]:
    url = f"http://127.0.0.1:{handle.server.metrics_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


@pytest.fixture
def served(node_factory) -> NodeHandle:  # type: ignore[no-untyped-def]
    handle: NodeHandle = node_factory("dash", peers=[], metrics_listen="127.0.0.1:0")
    return handle


def _documented_keys() -> set[str]:
    text = (ROOT / "docs" / "OPERATIONS.md").read_text()
    section = text.split("## Dashboard", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_.\[\]]+)` \|", section, re.MULTILINE))


def test_status_json_describes_the_node_and_every_field_is_documented(served: NodeHandle
                                                                       ) -> None:
    served.client.remember("one")
    served.client.remember("two", privacy="ephemeral")
    served.server.board.sample()
    served.server.board.sample()
    code, kind, body = _get(served, "/status.json")
    assert code == 200 and kind == "application/json"
    status = json.loads(body)
    me = served.node.node_id
    assert status["schema"] == 1 and status["node_id"] == me
    assert status["memories"] == {"local": 1, "replicated": 0, "ephemeral": 1}
    assert status["version_vector"] == {me: 1}
    assert status["sidecar"] == "embedded" and status["peers"] == []
    assert status["model"]["name"] == "test-hash" and status["model"]["dim"] == 384
    assert status["replication"]["converged"] is True
    documented = _documented_keys()

    def keys(obj: dict[str, Any], prefix: str = "") -> set[str]:
        out = set()
        for key, value in obj.items():
            out.add(prefix + key)
            if isinstance(value, dict) and key not in ("version_vector", "errors",
                                                       "writes_refused", "total", "recent"):
                out |= keys(value, prefix + key + ".")
            if isinstance(value, list) and value:
                out |= keys(value[0], prefix + key + "[].")
        return out

    found = keys(status)
    assert "samples.points[].events_applied_per_second" in found
    assert found <= documented, found - documented
    assert {"peers[].node_id", "peers[].lag_seconds", "peers[].found_by"} <= documented


def test_refused_requests_show_by_kind(served: NodeHandle) -> None:
    from memnode import InvalidArgument

    with pytest.raises(InvalidArgument):
        served.client.remember("   ")
    assert json.loads(_get(served, "/status.json")[2])["errors"] == {"invalid_argument": 1}


def test_page_is_one_self_contained_file(served: NodeHandle) -> None:
    code, kind, body = _get(served, "/")
    page = body.decode()
    assert code == 200 and kind.startswith("text/html")
    assert "<script>" in page and "<style>" in page and 'fetch("status.json"' in page
    # no external asset: nothing is loaded from another origin, nothing but status.json
    assert not re.search(r"""<(script|link|img|iframe)[^>]*(src|href)=""", page)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert _get(served, "/metrics")[0] == 200
    assert _get(served, "/nothing-here")[0] == 404


class _FakeSidecar:
    def __init__(self) -> None:
        self.core = SimpleNamespace(metrics=SimpleNamespace(events_applied=0,
                                                            events_rejected={}))

    def lag_seconds(self, peer: str) -> float:
        return 0.0


def test_ring_is_bounded_and_throughput_and_recent_rejections_come_from_it(
        node: NodeHandle) -> None:
    clock = FakeClock()
    board = StatusBoard(node.node, node.server.replication, sample_seconds=2.0, samples=3,
                        clock=lambda: clock.now_ms / 1000)
    sidecar = _FakeSidecar()
    board.sidecar = sidecar  # type: ignore[assignment]
    metrics = sidecar.core.metrics
    for applied, bad_signature in ((0, 1), (10, 1), (30, 4), (31, 6), (31, 6)):
        metrics.events_applied = applied
        metrics.events_rejected = {"bad_signature": bad_signature}
        board.sample()
        clock.advance(2.0)
    status = board.status()
    points = status["samples"]["points"]
    # three samples kept (applied 30, 31, 31): two rates between them
    assert [p["events_applied_per_second"] for p in points] == [0.5, 0.0]
    assert status["samples"]["capacity"] == 3
    assert status["rejections"] == {"total": {"bad_signature": 6},
                                    "recent": {"bad_signature": 2}, "window_seconds": 4.0}
    assert status["replication"]["events_applied_total"] == 31
