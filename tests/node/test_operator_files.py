"""infra/: the Prometheus alerting rules and the Grafana dashboard name only metrics a live
node exposes, and promtool accepts the rules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from typing import Any

import pytest

from helpers import ROOT, NodeHandle

RULES = ROOT / "infra" / "prometheus" / "alerts.yaml"
GRAFANA = ROOT / "infra" / "grafana" / "memnode-dashboard.json"
PROMTOOL = shutil.which("promtool")
METRIC = re.compile(r"\bmemnode_[a-z0-9_]+")
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def _exposed_names(exposition: str) -> set[str]:
    """Every series name the exposition declares, samples or not (a labelled counter
    that has not counted yet has a TYPE line and no sample)."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.MULTILINE):
        names.add(name)
        names.update(name + suffix for suffix in _SUFFIXES.get(kind, ()))
    return names


def _rule_exprs() -> list[str]:
    import yaml  # PyYAML comes with chromadb

    rules = yaml.safe_load(RULES.read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def _grafana_exprs() -> list[str]:
    dash: dict[str, Any] = json.loads(GRAFANA.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dash["templating"]["list"] if "definition" in v]
    return exprs


def test_every_metric_in_the_rules_and_the_dashboard_is_exposed(node_factory) -> None:  # type: ignore[no-untyped-def]
    handle: NodeHandle = node_factory("ops", peers=[], metrics_listen="127.0.0.1:0")
    with urllib.request.urlopen(f"http://127.0.0.1:{handle.server.metrics_port}/metrics",
                                timeout=10) as r:
        exposed = _exposed_names(r.read().decode())
    assert "memnode_federation_peer_lag_seconds" in exposed  # the sidecar's are there
    in_rules = {m for e in _rule_exprs() for m in METRIC.findall(e)}
    in_grafana = {m for e in _grafana_exprs() for m in METRIC.findall(e)}
    assert len(in_rules) >= 10 and len(in_grafana) >= 25
    assert in_rules - exposed == set()
    assert in_grafana - exposed == set()


def test_the_dashboard_is_grafana_json_with_a_query_per_panel() -> None:
    dash = json.loads(GRAFANA.read_text())
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert dash["uid"] == "memnode" and panels
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: apt-get "
                    "install prometheus)")
def test_promtool_accepts_the_alerting_rules() -> None:
    assert PROMTOOL is not None
    run = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"SUCCESS: (\d+) rules found", run.stdout)
