"""The README's figures table, from the result files in bench/results/.

    python -m bench figures [--print]

Reads each benchmark's full-run result (``NAME.json``), else its quick one
(``NAME-quick.json``), checks every goal of the issues against it (met, or missed and
by how much) and rewrites README.md between ``<!-- bench:begin -->`` and
``<!-- bench:end -->`` (nothing else in the file changes). Without the markers, or with
``--print``, it prints the table instead. ``python -m bench all`` runs it last.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._common import RESULTS, ROOT

DESCRIPTION = "rewrite the README figures table (between its bench markers) from bench/results"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
Row = tuple[str, str, str, str, str]  # measure, goal, result, status, source


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--print", action="store_true", help="print, do not touch README.md")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--quick", action="store_true", help="(accepted for `all`; no effect)")


def load(name: str) -> tuple[dict[str, Any] | None, str]:
    for suffix, label in (("", "full"), ("-quick", "quick")):
        path = RESULTS / f"{name}{suffix}.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError:
                continue
            when = str(data.get("started_at", ""))[:16].replace("T", " ")
            load_avg = (data.get("machine") or {}).get("loadavg_at_start") or []
            la = f", load {load_avg[0]}" if load_avg else ""
            return data, f"`{path.name}` ({label}, {when}{la})"
    return None, "not run"


def at_most(value: float | None, limit: float, unit: str) -> str:
    if value is None:
        return "not measured"
    if value <= limit:
        return f"met ({limit - value:,.4g} {unit} to spare)"
    return f"**MISSED** by {value - limit:,.4g} {unit} (+{(value / limit - 1):.0%})"


def at_least(value: float | None, limit: float, unit: str = "") -> str:
    if value is None:
        return "not measured"
    if value >= limit:
        return f"met (+{value - limit:,.4g}{unit})"
    return f"**MISSED** by {limit - value:,.4g}{unit}"


def _skipped(data: dict[str, Any] | None) -> str | None:
    if data is None:
        return "not run"
    return f"not run here: {data['skipped']}" if "skipped" in data else None


def mesh_rows() -> list[Row]:
    rows: list[Row] = []
    specs: list[tuple[str, str, float, float | None]] = [
        ("convergence-3-loopback", "3 nodes, loopback", 100.0, 50.0),
        ("convergence-16-loopback", "16 nodes, loopback", 300.0, None),
        ("convergence-16-loopback-r5", "16 nodes, loopback, 5 writes/s", 300.0, None),
        ("convergence-16-loopback-r5-lan", "16 nodes, loopback, 5 writes/s, lan preset", 300.0,
         None),
        ("convergence-3-netns-loss10-delay50", "3 netns hosts, 10% loss, 50 ms delay", 1000.0,
         None),
    ]
    for name, label, limit, stretch in specs:
        data, src = load(name)
        skip = _skipped(data)
        if data is None and "-r5" in name:
            continue  # optional runs
        if skip or data is None:
            rows.append((f"{label}: write-to-visible p99", f"<= {limit:g} ms", "-", skip or "",
                         src))
            continue
        lat = data["latency_ms"]
        delay_note = ""
        if data.get("delay_unavailable"):
            delay_note = " (no delay: " + data["delay_unavailable"] + ")"
        res = (f"p50 {lat['p50']} / p99 {lat['p99']} / max {lat['max']} ms over "
               f"{data['writes']} writes at {data['rate']:g}/s{delay_note}")
        if "repeats" in data:
            res += (f" (median run of {len(data['repeats'])}; p99s "
                    + ", ".join(str(x["p99"]) for x in data["repeats"]) + ")")
        status = at_most(lat["p99"], limit, "ms")
        if stretch is not None and lat["p99"] is not None:
            status += "; stretch 50 ms: " + ("met" if lat["p99"] <= stretch else "missed")
        rows.append((f"{label}: ack -> visible on every node, p99", f"<= {limit:g} ms", res,
                     status, src))
        rate = data["propagation_rate"]
        rows.append((f"{label}: propagated", "100%",
                     f"{data['propagated']}/{data['writes']} = {rate:.1%}; CPU "
                     f"{data['cpu_seconds_per_node']} s per node over "
                     f"{data['write_window_s']} s of writes",
                     "met" if rate >= 1.0 else f"**MISSED** by {1 - rate:.1%}", src))
        if name == "convergence-16-loopback":
            rows += _write_path_rows(label, data, src)
        if "reference" in data and name == "convergence-3-loopback":
            ref = data["reference"]
            rows.append(("3 nodes, loopback, vs the reference (converged in ~2.01 s)",
                         "faster than 2.01 s",
                         f"p99 {ref['ratio_p99']}x, max {ref['ratio_max']}x of 2.01 s",
                         at_most(lat["max"] / 1000, 2.01, "s"), src))
    return rows


def _write_path_rows(label: str, data: dict[str, Any], src: str) -> list[Row]:
    """Request -> ack, and CPU per replicated entry against raw Chroma in the same run."""
    rows: list[Row] = []
    ack = data.get("ack_ms", {}).get("p99")
    rows.append((f"{label}: request -> ack, p99", "<= 50 ms", f"{ack} ms",
                 at_most(ack, 50.0, "ms"), src))
    raw = (data.get("raw_reference") or {}).get("chroma_upsert_cpu_ms_per_vector_by_batch")
    cpu = data.get("cpu_ms_per_replicated_entry")
    if raw and cpu is not None:
        limit = 1.3 * raw["100"]
        stages = ", ".join(f"{k} {v}" for k, v in data["cpu_ms_per_entry_by_stage"].items())
        rows.append((f"{label}: CPU per replicated entry (all nodes)",
                     f"<= 1.3x raw Chroma upsert per vector at batch 100 ({limit:.3g} ms)",
                     f"{cpu} ms ({cpu / raw['100']:.1f}x raw batch 100; raw batch 1 / 10 / "
                     f"100: {raw['1']} / {raw['10']} / {raw['100']} ms); by stage: {stages}",
                     at_most(cpu, limit, "ms"), src))
    return rows


def scale_rows() -> list[Row]:
    """The 32-node and 25-host rows of ``python -m bench scale``."""
    rows: list[Row] = []
    data, src = load("convergence-32-loopback-r5-lan")
    if data is not None and not _skipped(data):
        lat, rate = data["latency_ms"], data["propagation_rate"]
        rows.append(("32 nodes, loopback, 5 writes/s, lan preset: propagated", "100%",
                     f"{data['propagated']}/{data['writes']} = {rate:.1%}; p50 {lat['p50']} / "
                     f"p99 {lat['p99']} ms", "met" if rate >= 1.0
                     else f"**MISSED** by {1 - rate:.1%}", src))
        rss = data.get("rss_mb_max")
        rows.append(("32 nodes: resident memory per node (test embedder)", "<= 150 MB",
                     f"median {data.get('rss_mb_per_node')} / max {rss} MB (node and its "
                     f"Chroma process; PSS median {data.get('pss_mb_per_node')} MB)",
                     at_most(rss, 150.0, "MB"), src))
    data, src = load("convergence-25-netns-loss0-delay100-lan")
    if data is not None and not _skipped(data):
        lat, msgs = data["latency_ms"], data.get("messages_per_write")
        label = "25 netns hosts, 100 ms one-way delay, 20 writes/s"
        rows.append((f"{label}: ack -> visible on every node, median", "< 400 ms",
                     f"{lat['p50']} ms", at_most(lat["p50"], 400.0, "ms"), src))
        rows.append((f"{label}: max", "< 600 ms", f"{lat['max']} ms",
                     at_most(lat["max"], 600.0, "ms"), src))
        rows.append((f"{label}: messages per write (all kinds)", "< 30", f"{msgs}",
                     at_most(msgs, 30.0, ""), src))
    return rows


def sim_rows() -> list[Row]:
    data, src = load("simulate")
    if data is None:
        return [("Simulated mesh", "", "-", "not run", src)]
    runs = {r["nodes"]: r for r in data["runs"] if not r.get("skipped")}
    rows: list[Row] = []
    for n, limit in ((64, 12), (1000, 16)):
        r = runs.get(n)
        if r is None:
            rows.append((f"Simulated {n} nodes: 100% of nodes", f"<= {limit} rounds", "-",
                         "not measured", src))
            continue
        ticks, ae = r["ticks_to_converge"], r["rounds_to_converge"]
        rows.append((f"Simulated {n} nodes: 100% of nodes (fanout {data['fanout']}, "
                     f"{r['writes']} writes)", f"<= {limit} rounds",
                     f"worst write {ticks} ticks = message hops, median write "
                     f"{r['median_write_ticks']} ({ae} anti-entropy rounds; "
                     f"{ticks * data.get('tick_ms', 100) / 1000:g} s at the lan preset's "
                     f"{data.get('tick_ms', 100)} ms ticks); 99.99% in {r['ticks_to_99_99']}; "
                     f"log2 N {r['log2_n']}; Serf model {r['serf_rounds']} rounds "
                     f"(= {r['serf_rounds'] * 0.2:.2f} s at Serf's 200 ms)",
                     f"in hops: {at_most(ticks, limit, 'rounds')}; in anti-entropy rounds: "
                     f"{at_most(ae, limit, 'rounds')}", src))
    biggest = max(runs) if runs else None
    if biggest is not None:
        r = runs[biggest]
        skipped = [x["nodes"] for x in data["runs"] if x.get("skipped")]
        rows.append((f"Simulated, largest N run: {biggest:,}", ">= 10,000 nodes",
                     f"{r['ticks_to_converge']} ticks ({r['rounds_to_converge']} rounds), "
                     f"{r['messages_per_node_per_write']} messages and "
                     f"{r['bytes_per_node_per_write']:,.0f} B per node per write, "
                     f"{r['seconds']} s wall" + (f"; skipped {skipped}" if skipped else ""),
                     at_least(biggest, 10_000), src))
    return rows


def wire_rows() -> list[Row]:
    rows: list[Row] = []
    conv, csrc = load("convergence-3-loopback")
    wire, wsrc = load("wire")
    cu, usrc = load("catchup")
    if conv and "bytes_per_entry" in conv:
        b = conv["bytes_per_entry"]
        rows.append(("Bytes per replicated 384-dim entry: single writes (3 nodes)", "<= 1.8 KB",
                     f"{b:,.0f} B ({conv['events_sent_per_entry']} events sent per entry)",
                     at_most(b, 1800, "B"), csrc))
    if wire:
        b = wire["batched_write"]["bytes_per_entry"]
        rows.append(("Bytes per replicated entry: RememberBatch writes (3 nodes)", "<= 1.8 KB",
                     f"{b:,.0f} B ({wire['batched_write']['events_sent_per_entry']} events "
                     "sent per entry)", at_most(b, 1800, "B"), wsrc))
    if cu and cu.get("node"):
        b = cu["node"]["bytes_per_entry"]
        rows.append(("Bytes per replicated entry: catch-up of a new node", "<= 1.8 KB",
                     f"{b:,.0f} B", at_most(b, 1800, "B"), usrc))
    if wire:
        a, z, q = wire["digest_1k"], wire["digest_100k"], wire["in_sync"]
        same = "same" if a["exchange"] == z["exchange"] else f"{z['exchange'] - a['exchange']:+d} B"
        rows.append(("In-sync digest exchange (digest + reply), 3 nodes",
                     "<= 512 B, same at 1k and 100k",
                     f"1k: {a['exchange']} B serialized, {q['bytes_per_exchange']} B measured; "
                     f"100k: {z['exchange']} B ({same}: varint lengths)",
                     at_most(max(a["exchange"], z["exchange"]), 512, "B"), wsrc))
    return rows


def catchup_rows() -> list[Row]:
    data, src = load("catchup")
    if data is None:
        return [("Catch-up of a new node", ">= 0.95x raw add", "-", "not run", src)]
    node, raw = data["node"], data["raw"]
    indexed = (f"; all in Chroma {node['indexed_s']} s after ready, "
               f"{data['ratio_indexed']}x raw" if data.get("ratio_indexed") else "")
    return [(f"Catch-up of {data['memories']:,} memories vs raw chromadb add (all visible)",
             ">= 0.95x", f"{node['node_per_s']}/s vs {raw['per_s']}/s = {data['ratio']}x "
             f"({node['catchup_s']} s after ready{indexed})",
             at_least(data["ratio"], 0.95, "x"), src)]


def tls_rows() -> list[Row]:
    data, src = load("tls")
    if data is None:
        return [("mTLS cost", "(reported)", "-", "not run", src)]
    md = data["medians"]
    return [("mTLS / plaintext: 3-node write-to-visible", "(reported as ratio)",
             f"p50 {data['latency_p50_ratio']}x ({md['tls_p50_ms']} vs "
             f"{md['plaintext_p50_ms']} ms), p99 {data['latency_p99_ratio']}x", "", src),
            ("mTLS / plaintext: catch-up throughput", "(reported as ratio)",
             f"{data['catchup_throughput_ratio']}x ({md['tls_catchup_per_s']} vs "
             f"{md['plaintext_catchup_per_s']} memories/s, {data['memories']:,})", "", src)]


def sbs_rows() -> list[Row]:
    data, src = load("sidebyside")
    if data is None:
        return [("Side by side", "", "-", "not run", src)]
    rows: list[Row] = []
    for s in data["systems"]:
        if "skipped" in s:
            rows.append((f"Side by side: {s['name']}", "", "-", s["skipped"], src))
            continue
        lat = s["latency_ms"]
        rows.append((f"Side by side, {data['nodes']} peers: {s['name']}", "(same workload)",
                     f"p50 {lat['p50']} / p99 {lat['p99']} ms, {s['propagation_rate']:.0%} "
                     f"propagated, {s['bytes_per_entry']:,.0f} B per entry", "", src))
    return rows


def node_rows() -> list[Row]:
    """The node benchmark's targets; a recall-only run (``node-recall.json``) replaces
    the targets it measured again, when it is the newer."""
    rows: dict[str, tuple[str, Row]] = {}
    for name in ("node", "node-recall"):
        data, src = load(name)
        if data is None:
            continue
        when = str(data.get("started_at", ""))
        for t in data.get("targets", []):
            if t["name"] not in rows or rows[t["name"]][0] < when:
                rows[t["name"]] = (when, (f"Node: {t['name']}", "", str(t.get("value", "-")),
                                          t.get("text", ""), src))
    return [row for _, row in rows.values()]


SECTIONS: list[Callable[[], list[Row]]] = [mesh_rows, scale_rows, sim_rows, wire_rows,
                                           catchup_rows,
                                           tls_rows, sbs_rows, node_rows]


def render() -> str:
    rows = [r for section in SECTIONS for r in section()]
    lines = ["| Measure | Goal | Result | Status | Source |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
    plots = sorted(p.name for p in RESULTS.glob("*.png"))
    lines += [
        "",
        "Definitions: *ack -> visible* is from the write's acknowledgement at the client to "
        "the first version-vector poll (every 2 ms per node) showing it on the last node; "
        "*bytes per entry* are the sidecars' protobuf bytes sent (no gRPC/HTTP2/TLS "
        "framing) over W x (N-1) replicated entries; a simulated *tick* is one message hop "
        "(the Serf model's unit), an *anti-entropy round* is 10 ticks (lan preset). "
        "Rows use the full run where there is one, else `make bench`'s quick run. Details: "
        "[bench/README.md](bench/README.md).",
    ]
    if plots:
        lines += ["", "Plots: " + ", ".join(f"[{p}](bench/results/{p})" for p in plots)]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    table = render()
    readme: Path = args.readme
    text = readme.read_text() if readme.is_file() else ""
    if args.print or BEGIN not in text or END not in text:
        if not args.print:
            print(f"(no {BEGIN} ... {END} markers in {readme}: printing the table)",
                  file=sys.stderr)
        print(table)
        return 0
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    print(table)
    print("(README.md figures rewritten between the bench markers)", file=sys.stderr)
    return 0
