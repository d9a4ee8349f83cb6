"""The drill over time: acknowledged and failed operations per second by kind, the
faults as spans, and the peak RSS of the pods' processes (matplotlib, the bench
extra; without it, says so)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

COLORS = {"kill_pod": "tab:red", "kill_node": "tab:orange", "kill_sidecar": "gold",
          "partition_halves": "tab:purple", "partition_isolate": "tab:blue",
          "partition_one_way": "tab:cyan", "loss": "tab:gray"}


def plot(report: dict[str, Any], out: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed (pip install -e '.[bench]')"
    tl = report["timeline"]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    per: dict[tuple[str, bool], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for t, kind, ok in tl["ops"]:
        per[(kind, ok)][int(t)] += 1
    for (kind, ok), counts in sorted(per.items()):
        xs = sorted(counts)
        ax1.plot(xs, [counts[x] for x in xs], ("-" if ok else ":"),
                 label=f"{kind} {'acknowledged' if ok else 'raised'}")
    ax1.set_ylabel("operations / s")
    ax1.legend(fontsize=7, ncol=3)
    lanes = sorted({f["driver"] for f in tl["faults"]})
    for f in tl["faults"]:
        y = lanes.index(f["driver"])
        start = f["t"] - f["seconds"]
        ax2.barh(y, max(f["seconds"], 0.3), left=start, color=COLORS.get(f["kind"], "k"),
                 label=f["kind"])
    handles, labels = ax2.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=False))
    ax2.legend(unique.values(), unique.keys(), fontsize=7, ncol=4)
    ax2.set_yticks(range(len(lanes)), lanes)
    ax2.set_ylabel("faults")
    rss: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for t, proc, _threads, mb in tl["resources"]:
        rss[proc].append((t, mb))
    for proc, pts in sorted(rss.items()):
        ax3.plot([p[0] for p in pts], [p[1] for p in pts], lw=0.8, label=proc)
    ax3.set_ylabel("RSS (MB)")
    ax3.set_xlabel("seconds since the load started")
    ax3.legend(fontsize=6, ncol=4)
    o = report["options"]
    fig.suptitle(f"chaos drill: {o['hosts']} hosts, {o['seconds']:.0f}s, {o['rate']:g} ops/s, "
                 f"seed {o['seed']}: lost {report['lost']}, duplicated {report['duplicated']}, "
                 f"resurrected {report['resurrected']}, agreed in {report['time_to_agree_s']}s")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return f"plot: {out}"
