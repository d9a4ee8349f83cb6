"""The chaos drill, short: 3 pods in network namespaces (node and sidecar processes,
mTLS), steady remember / update / forget load, kill -9, partitions, packet loss, a full
disk, a wipe-and-restore and wall-clock steps together for a minute, a fixed seed; then
nothing acknowledged may be lost, duplicated or resurrected, the version vectors must
agree, and no canary may cross the bridge.
``python -m bench chaos`` runs the same drill at any length (bench/chaos/)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench._mesh import MeshUnavailable, load_netlab  # noqa: E402
from bench.chaos.drill import DrillOptions, run_drill, summary  # noqa: E402

pytestmark = pytest.mark.slow

SECONDS = 60
SEED = 14
#: Every driver, as `python -m bench chaos` runs them.
DRIVERS = ("kill", "partition", "loss", "disk", "restore", "clock")


def test_short_drill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    netlab = load_netlab()
    try:
        netlab.Netlab.check_tools("nft", "tcpdump")
    except netlab.NetlabUnavailable as exc:
        pytest.skip(f"the chaos drill runs pods in network namespaces: {exc}")
    options = DrillOptions(hosts=3, seconds=SECONDS, rate=10, seed=SEED, drivers=DRIVERS,
                           agree_deadline=60, work=tmp_path / "drill")
    try:
        report = run_drill(options)
    except MeshUnavailable as exc:
        pytest.skip(f"the chaos drill runs pods in network namespaces: {exc}")
    print("\n" + summary(report))
    assert report["lost"] == 0
    assert report["duplicated"] == 0
    assert report["resurrected"] == 0
    assert report["canaries_on_wire"] == 0
    assert report["checks"]["eventually_vectors_agree"]["ok"]
    assert not report["driver_errors"]
    acked = report["ops_acknowledged"]
    assert acked.get("remember", 0) >= 100 and acked.get("forget", 0) >= 10, acked
    assert sum(report["faults"].values()) >= 5, report["faults"]
    assert report["ok"], summary(report)
