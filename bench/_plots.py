"""The benchmark figures (matplotlib, Agg backend). Each function returns False, and
says why on stderr, when matplotlib is not installed; the JSON results stand alone."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no plot: matplotlib is not installed; pip install matplotlib)",
              file=sys.stderr)
        return None
    return plt


def _save(fig: Any, path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return True


def convergence(r: dict[str, Any], path: Path) -> bool:
    """Latency CDF + histogram, and writes acked / fully visible over time."""
    plt = _pyplot()
    if plt is None or not r["samples"]["latency_ms"]:
        return False
    lat = sorted(r["samples"]["latency_ms"])
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.4))
    title = (f"{r['nodes']} nodes, {r['hosts']}"
             + (f", loss {r['loss']:g}%, delay {r['delay']:g} ms" if r["hosts"] == "netns"
                else "") + (", mTLS" if r["tls"] else ", plaintext")
             + f", {r['writes']} writes at {r['rate']:g}/s")
    fig.suptitle(f"memnode write-to-visible: {title}")
    n = len(lat)
    a.plot(lat, [(i + 1) / n for i in range(n)], drawstyle="steps-post", color="#1f77b4",
           label="every node")
    half = sorted(r["samples"].get("half_ms") or [])
    if half and r["nodes"] > 3:
        a.plot(half, [(i + 1) / len(half) for i in range(len(half))], drawstyle="steps-post",
               color="#2ca02c", label="half of the nodes")
        a.legend(loc="lower right", fontsize=8)
    for q, style in ((50, ":"), (99, "--")):
        v = r["latency_ms"][f"p{q}"]
        a.axvline(v, color="grey", linestyle=style, linewidth=1)
        a.annotate(f"p{q} {v:.0f} ms", (v, 0.05 + (0.1 if q == 99 else 0)), fontsize=8)
    a.set_xlabel("ack -> visible on every node (ms)")
    a.set_ylabel("fraction of writes")
    a.set_title("latency CDF")
    a.set_ylim(0, 1.02)
    a.grid(alpha=0.3)
    bins = max(10, min(60, n // 4))
    b.hist(lat, bins=bins, color="#ff7f0e", alpha=0.85)
    b.set_xlabel("ack -> visible on every node (ms)")
    b.set_ylabel("writes")
    b.set_title(f"latency histogram (propagated {r['propagation_rate']:.1%})")
    b.grid(alpha=0.3)
    acked = sorted(r["samples"]["acked_s"])
    vis = sorted(r["samples"]["visible_s"])
    w = r["writes"]
    c.plot(acked, [(i + 1) / w for i in range(len(acked))], drawstyle="steps-post",
           label="acknowledged at origin")
    c.plot(vis, [(i + 1) / w for i in range(len(vis))], drawstyle="steps-post",
           label="visible on every node")
    c.set_xlabel("seconds since the first write")
    c.set_ylabel("fraction of all writes")
    c.set_title("convergence over time")
    c.legend(loc="lower right", fontsize=8)
    c.set_ylim(0, 1.02)
    c.grid(alpha=0.3)
    return _save(fig, path)


def simulate(r: dict[str, Any], path: Path) -> bool:
    """Rounds to converge against N (with log2 N and the Serf model), residue curves."""
    plt = _pyplot()
    runs = [x for x in r["runs"] if x.get("converged")]
    if plt is None or not runs:
        return False
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.6))
    ns = [x["nodes"] for x in runs]
    a.plot(ns, [x["ticks_to_converge"] for x in runs], "o-", label="memnode core: ticks "
           "(message hops) to 100%, worst write")
    a.plot(ns, [x["ticks_to_99_99"] for x in runs], "s--", label="memnode core: to 99.99%")
    a.plot(ns, [x["median_write_ticks"] for x in runs], "d:", label="memnode core: median "
           "write to 100%")
    a.plot(ns, [x["rounds_to_converge"] for x in runs], "^-", label="memnode core: "
           "anti-entropy rounds to 100%")
    grid = sorted({*ns, *[2 ** k for k in range(2, 15) if min(ns) <= 2 ** k <= max(ns)]})
    a.plot(grid, [math.log2(n) for n in grid], ":", color="grey", label="log2(N)")
    f = r["fanout"]
    a.plot(grid, [serf_rounds(n, f, r.get("loss", 0.0)) for n in grid], "-.", color="black",
           label=f"Serf model (fanout {f}, 99.99%)")
    a.set_xscale("log")
    a.set_xticks(ns, [str(n) for n in ns])
    a.minorticks_off()
    a.set_xlabel("nodes (N)")
    a.set_ylabel("rounds")
    a.set_title(f"rounds to converge ({r['writes']} writes, loss {r.get('loss', 0):g}%)")
    a.legend(fontsize=7)
    a.grid(alpha=0.3, which="both")
    for x in runs:
        res = x.get("residue_by_tick") or []
        if res:
            b.plot(range(1, len(res) + 1), [max(v, 1e-6) for v in res], label=f"N={x['nodes']}")
    b.set_yscale("log")
    b.set_xlabel("ticks since the write (one message hop; an anti-entropy round is "
                 f"{r['anti_entropy_interval_ticks']} ticks)")
    b.set_ylabel("residue: share of nodes lacking a write")
    b.set_title("residue: mean share of nodes lacking a write")
    b.legend(fontsize=7)
    b.grid(alpha=0.3, which="both")
    return _save(fig, path)


def serf_rounds(n: int, fanout: float, loss_pct: float = 0.0, coverage: float = 0.9999
                ) -> float:
    """Serf's convergence simulator model (website/source/javascripts/simulator.js):
    infected(x) = N / (1 + (N+1) e^(-b x)), b = fanout/2 * (1-loss) * (1-failed);
    solved for infected/N = coverage: x = ln((N+1) c / (1-c)) / b."""
    b = fanout * 0.5 * (1 - loss_pct / 100.0)
    return math.log((n + 1) * coverage / (1 - coverage)) / b


def sidebyside(r: dict[str, Any], path: Path) -> bool:
    plt = _pyplot()
    systems = [s for s in r["systems"] if s.get("latency_ms", {}).get("p50") is not None]
    if plt is None or not systems:
        return False
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.4))
    names = [s["name"] for s in systems]
    x = range(len(names))
    p50 = [s["latency_ms"]["p50"] for s in systems]
    p99 = [s["latency_ms"]["p99"] for s in systems]
    a.bar([i - 0.2 for i in x], p50, width=0.4, label="p50")
    a.bar([i + 0.2 for i in x], p99, width=0.4, label="p99")
    a.axhline(r["reference_s"] * 1000, color="red", linestyle="--", linewidth=1,
              label=f"reference: converged in {r['reference_s']} s")
    a.set_xticks(list(x), names, fontsize=8)
    a.set_yscale("log")
    a.set_ylabel("ack -> visible on all peers (ms)")
    a.set_title(f"{r['nodes']} peers, {r['writes']} writes at {r['rate']:g}/s")
    a.legend(fontsize=8)
    a.grid(alpha=0.3, axis="y", which="both")
    bpe = [s.get("bytes_per_entry") or 0 for s in systems]
    b.bar(list(x), bpe, color="#2ca02c")
    for i, v in enumerate(bpe):
        b.annotate(f"{v:,.0f}", (i, v), ha="center", va="bottom", fontsize=8)
    b.axhline(1800, color="red", linestyle="--", linewidth=1, label="goal: 1.8 KB")
    b.axhline(1536, color="grey", linestyle=":", linewidth=1, label="the vector alone: 1,536 B")
    b.legend(fontsize=8)
    b.set_xticks(list(x), names, fontsize=8)
    b.set_ylabel("bytes sent per replicated entry")
    b.set_title("bytes on the wire per entry (384-dim)")
    b.grid(alpha=0.3, axis="y", which="both")
    return _save(fig, path)
