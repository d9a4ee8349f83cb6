"""The cost of the audit trail: Remember throughput with the audit on vs off, one run.

    python -m bench audit [--quick] [--rounds 9] [--calls 1000] [--json OUT]

Two ``memnode serve`` processes (test-hash embedder, so the node's own work is small
and the audit's share of it as large as it gets; sync full, the default), one with
``--no-audit``. Rounds alternate (off, on, off, on...) so that the shared machine's load
hits both alike. Each round: ``--calls`` unary Remember calls from one client in
sequence, then the same from 8 client threads at once. Figures are medians over rounds;
the ratio is on / off (< 1: the audit costs throughput). The node process's CPU per
call (from /proc) is less sensitive to the machine's other load than throughput.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._common import RESULTS, ServeProcess, load_average, machine_info, median, write_json

DESCRIPTION = "Remember throughput with the audit trail on vs off (medians, one run)"
THREADS = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=None, help="default 9 (quick 3)")
    parser.add_argument("--calls", type=int, default=None,
                        help="Remember calls per round and mode (default 1000; quick 150)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")


def say(message: str) -> None:
    print(f"[bench audit {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sequential(addr: str, calls: int, tag: str) -> float:
    from memnode.client import Client

    with Client(addr, timeout=30) as client:
        client.remember(f"warm {tag}")
        started = time.perf_counter()
        for i in range(calls):
            client.remember(f"sequential {tag} memory number {i}", {"round": tag})
        return calls / (time.perf_counter() - started)


def _concurrent(addr: str, calls: int, tag: str) -> float:
    from memnode.client import Client

    clients = [Client(addr, timeout=30) for _ in range(THREADS)]
    for c in clients:
        c.remember(f"warm {tag}")
    share = calls // THREADS

    def work(c: Any, t: int) -> None:
        for i in range(share):
            c.remember(f"concurrent {tag} thread {t} memory {i}", {"round": tag})

    threads = [threading.Thread(target=work, args=(c, t)) for t, c in enumerate(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    for c in clients:
        c.close()
    return share * THREADS / seconds


def _entry_costs(work: Path, n: int = 20_000) -> dict[str, float]:
    """Microseconds per entry: on the request path (``record``), and in the writer thread
    (number, chain, encode: ``seal`` + ``canonical``), for an entry shaped like a
    Remember's."""
    from memnode.storage import audit_format as fmt
    from memnode.storage.audit_writer import AuditWriter

    entry = {"ts": 1_764_000_000_000, "method": "Remember", "who": "token:0123456789abcdef",
             "peer": "ipv4:127.0.0.1:50112", "code": "OK", "count": 1,
             "ids": ["3tijalfcjwl246qkncet/qttc5peohrywi"], "reason": "ticket 4711"}
    writer = AuditWriter(work / "micro", lambda: 0)
    writer.start()
    started = time.perf_counter()
    for _ in range(n):
        writer.record(dict(entry))
    record_s = time.perf_counter() - started
    writer.close()
    started = time.perf_counter()
    head = fmt.GENESIS
    for i in range(n):
        sealed = fmt.seal(entry, i + 1, head)
        head = sealed["hash"]
        fmt.canonical(sealed)
    seal_s = time.perf_counter() - started
    return {"record_us": round(record_s / n * 1e6, 2), "seal_us": round(seal_s / n * 1e6, 2)}


def run(args: argparse.Namespace) -> int:
    quick = bool(args.quick)
    rounds = args.rounds or (3 if quick else 9)
    calls = args.calls or (150 if quick else 1000)
    out = args.json or RESULTS / ("audit-quick.json" if quick else "audit.json")
    work = Path(tempfile.mkdtemp(prefix="memnode-bench-audit-"))
    modes = {"off": ["--no-audit"], "on": []}
    nodes = {m: ServeProcess(work / m, "test-hash", work / f"{m}.log",
                             ["--sidecar", "off", *extra]) for m, extra in modes.items()}
    rates: dict[str, dict[str, list[float]]] = {m: {"sequential": [], "concurrent": [],
                                                    "node_cpu_ms_per_call": []}
                                                for m in modes}
    info = machine_info()
    costs = _entry_costs(work)
    say(f"per entry: {costs['record_us']} us on the request path, {costs['seal_us']} us "
        "in the writer thread")
    try:
        for node in nodes.values():
            node.start()
        for r in range(rounds):
            for mode, node in nodes.items():
                assert node.proc is not None
                cpu = _cpu_seconds(node.proc.pid)
                seq = _sequential(node.addr, calls, f"{r}{mode}")
                conc = _concurrent(node.addr, calls, f"{r}{mode}")
                cpu_ms = (_cpu_seconds(node.proc.pid) - cpu) * 1000 / (2 * calls)
                rates[mode]["sequential"].append(round(seq, 1))
                rates[mode]["concurrent"].append(round(conc, 1))
                rates[mode]["node_cpu_ms_per_call"].append(round(cpu_ms, 3))
                say(f"round {r + 1}/{rounds} audit {mode}: {seq:.0f}/s sequential, "
                    f"{conc:.0f}/s with {THREADS} clients, node CPU {cpu_ms:.2f} ms/call")
    finally:
        for node in nodes.values():
            node.stop()
        trail = [p.read_bytes() for p in (work / "on" / "audit").glob("*.jsonl")]
        audit_bytes, entries = sum(map(len, trail)), sum(t.count(b"\n") for t in trail)
        shutil.rmtree(work, ignore_errors=True)
    result: dict[str, Any] = {
        "benchmark": "audit", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info, "loadavg_at_end": load_average(), "rounds": rounds,
        "calls_per_round": calls, "threads": THREADS, "rates": rates,
        "entry_cost_us": costs,
        "audit_entries": entries,
        "audit_bytes_per_entry": round(audit_bytes / max(1, entries), 1),
    }
    for kind in ("sequential", "concurrent"):
        off, on = median(rates["off"][kind]), median(rates["on"][kind])
        result[kind] = {"off_per_s": round(off, 1), "on_per_s": round(on, 1),
                        "ratio_on_off": round(on / off, 3) if off else None}
        say(f"{kind}: audit off {off:.0f}/s, on {on:.0f}/s, on/off "
            f"{result[kind]['ratio_on_off']}")
    cpu_off = median(rates["off"]["node_cpu_ms_per_call"])
    cpu_on = median(rates["on"]["node_cpu_ms_per_call"])
    result["node_cpu_ms_per_call"] = {"off": round(cpu_off, 3), "on": round(cpu_on, 3),
                                      "audit_ms": round(cpu_on - cpu_off, 3)}
    say(f"node CPU per Remember: off {cpu_off:.3f} ms, on {cpu_on:.3f} ms")
    write_json(out, result)
    say(f"wrote {out}")
    return 0
