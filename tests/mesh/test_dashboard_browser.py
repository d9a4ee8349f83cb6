"""The status dashboard in a real headless Chromium, served by one node of a 3-node mesh.

Set MEMNODE_UPDATE_SCREENSHOT=1 to refresh docs/dashboard.png from this run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from helpers import ROOT, NodeProcess, converged_vectors, start_mesh, wait_for

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on PATH (Debian: "
                       "apt-get install chromium)"),
]


def _browser(tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp / 'chromium-profile'}", "--virtual-time-budget=5000",
           *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


class Dom(HTMLParser):
    """Rows of the version vector and peers tables, and the elements with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, list[str]]] = {"origin": {}, "peer": {}}
        self.by_id: dict[str, str] = {}
        self._row: tuple[str, str] | None = None
        self._id: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr":
            for kind in ("origin", "peer"):
                if a.get(f"data-{kind}"):
                    self._row = (kind, str(a[f"data-{kind}"]))
                    self.rows[kind][self._row[1]] = []
        if tag == "td" and self._row is not None:
            self.rows[self._row[0]][self._row[1]].append("")
        self._id = a.get("id") or self._id

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        self._id = None

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            cells = self.rows[self._row[0]][self._row[1]]
            if cells:
                cells[-1] += data
        if self._id is not None:
            self.by_id[self._id] = self.by_id.get(self._id, "") + data


def _status(proc: NodeProcess) -> dict[str, Any]:
    url = f"http://127.0.0.1:{proc.ready['metrics_port']}/status.json"
    with urllib.request.urlopen(url, timeout=10) as response:
        status: dict[str, Any] = json.load(response)
    return status


def test_dashboard_shows_the_mesh_in_a_real_browser(tmp_path: Path,
                                                    procs: list[NodeProcess]) -> None:
    procs += start_mesh(tmp_path, 3, "--metrics-listen", "127.0.0.1:0",
                        "--dashboard-sample-seconds", "0.5")
    ids = [p.ready["node_id"] for p in procs]
    clients = [p.client() for p in procs]
    for n, client in enumerate(clients):
        client.remember_batch([__import__("memnode").NewMemory(f"note {n}.{i}")
                               for i in range(n + 1)])
    expected_vv = {ids[n]: n + 1 for n in range(3)}
    wait_for(lambda: converged_vectors(clients)
             and clients[0].status().version_vector == expected_vv, "the mesh to converge")

    def ready() -> bool:
        s = _status(procs[0])
        return (len(s["samples"]["points"]) >= 4 and s["replication"]["converged"]
                and sorted(p["node_id"] for p in s["peers"] if p["state"] == "alive")
                == sorted(ids[1:]))
    wait_for(ready, "node 0 to see both peers alive and caught up, with samples")

    url = f"http://127.0.0.1:{procs[0].ready['metrics_port']}/"
    run = _browser(tmp_path, url, "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    dom = Dom()
    dom.feed(run.stdout)
    assert dom.by_id["node-id"] == ids[0]
    assert {origin: cells[1] for origin, cells in dom.rows["origin"].items()} == \
        {i: str(n) for i, n in expected_vv.items()}
    assert {peer: cells[1] for peer, cells in dom.rows["peer"].items()} == \
        {ids[1]: "alive", ids[2]: "alive"}
    assert (dom.by_id["count-local"], dom.by_id["count-replicated"]) == ("1", "5")
    assert dom.by_id.get("error", "") == ""  # the page read status.json without error

    shot = tmp_path / "dashboard.png"
    run = _browser(tmp_path, url, f"--screenshot={shot}", "--window-size=1100,760")
    assert run.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", run.stderr
    if os.environ.get("MEMNODE_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")
    for client in clients:
        client.close()
