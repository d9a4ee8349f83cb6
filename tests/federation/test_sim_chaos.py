"""The chaos drill's fault mix in the pure simulator, short: 40 nodes, 80 rounds of
steady remember / update / forget load under kills and restarts, partitions (halves,
one node isolated, one way) with forgets on the cut-off side, loss and delay, and
nodes wiped and restored from an earlier backup; a fixed seed. Then the real drill's
checks must all hold. ``python -m bench simchaos`` runs it at 1,000+ nodes."""

from __future__ import annotations

import random
import sys
from pathlib import Path

from federation.messages import Digest
from federation.sim.network import SimNetwork

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.simchaos import summary  # noqa: E402
from bench.simchaos.drill import SimDrillOptions, run_drill  # noqa: E402

CHECKS = {"eventually_vectors_agree", "finally_no_write_lost", "finally_no_duplicates",
          "finally_no_resurrection", "finally_updates_agree", "finally_no_seq_reused"}


def test_every_check_holds_under_the_full_fault_mix() -> None:
    report = run_drill(SimDrillOptions(nodes=40, rounds=80, seed=4, rate=12))
    assert report["ok"], summary(report)
    assert set(report["checks"]) == CHECKS
    faults = report["faults"]
    for kind in ("kill", "loss", "wipe_restore", "forget_while_partitioned"):
        assert faults.get(kind), (kind, faults)
    assert sum(faults.get(k, 0) for k in faults if k.startswith("partition_")) >= 3, faults
    acked = report["operations"]["acknowledged"]
    assert all(acked.get(k, 0) > 20 for k in ("remember", "update", "forget")), acked
    assert report["checks"]["finally_no_write_lost"]["writes_checked"] > 100
    assert all(r["ended_at"] is not None for r in report["restores"]), report["restores"]
    assert report["checks"]["eventually_vectors_agree"]["rounds"] < 30


def test_the_same_seed_gives_the_same_drill() -> None:
    o = SimDrillOptions(nodes=8, rounds=30, seed=2)
    a, b = run_drill(o), run_drill(o)
    for r in (a, b):  # the machine's figures aside
        del r["seconds"], r["max_rss_mb"]
    assert a == b


def test_a_one_way_partition_cuts_one_direction_only() -> None:
    net = SimNetwork(random.Random(1))
    net.partition([[0, 1], [2, 3]], one_way=True)
    assert not net.connected(0, 2) and net.connected(2, 0) and net.connected(0, 1)
    assert net.connected(2, 3)
    net.node_loss[3] = 0.999999
    message = Digest(sender="x", incarnation=1, heartbeat=1, address="", version_vector={})
    for _ in range(20):
        net.send(0, 2, 3, message)
    assert net.stats.dropped == 20 and net.due(1) == []
