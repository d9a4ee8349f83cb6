"""memnode side by side with the reference figure, a naive baseline and a CRDT library,
same workload, same machine, same run.

    python -m bench sidebyside [--nodes 3] [--writes 200] [--rate 20] [--interval 1.0]

- memnode: ``bench convergence`` on loopback (plaintext: the others have no TLS).
- naive: N processes, each pulling the full state of every other every ``--interval``
  seconds over loopback HTTP (bench/_peers.py).
- pycrdt: N processes, one Yrs document each, every local update sent at once to every
  peer over loopback TCP (bench/_peers.py).
- reference: the system memnode replaces converged a 3-node federated memory sync in
  about 2.01 s with 100% propagation (a published figure, not run here).

The workload of the baselines is memnode's: W writes at R per second round-robin, each
an id with a 384-dim float32 embedding (1,536 B) and two keyed-hash metadata values, and
the same visibility measurement (bench/_watch.py; their probe is ``GET /vv``).
Bytes per entry: bytes the peers sent / (W * (N-1)).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._common import RESULTS, ROOT, child_env, load_average, machine_info, write_json
from bench._mesh import MeshOptions
from bench._watch import Watcher
from bench.catchup import vectors
from bench.convergence import REFERENCE_S, measure

DESCRIPTION = "memnode vs the 2.01 s reference, a naive full-state puller and pycrdt (Yrs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--writes", type=int, default=None, help="default 200 (quick 60)")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=1.0,
                        help="the naive baseline's pull interval (s)")
    parser.add_argument("--poll-ms", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")
    parser.add_argument("--plot", type=Path, default=None, metavar="OUT.png")


def say(message: str) -> None:
    print(f"[bench sidebyside {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr,
          flush=True)


def _http(url: str, body: Any = None, timeout: float = 10.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (loopback, ours)
        return json.loads(r.read() or b"{}")


def baseline(mode: str, n: int, writes: int, rate: float, interval: float, poll_ms: float,
             log_dir: Path) -> dict[str, Any]:
    """Start N peers of ``mode``, run the workload, measure, stop them."""
    procs: list[subprocess.Popen[str]] = []
    ready: list[dict[str, Any]] = []
    names = [f"p{i}" for i in range(n)]
    budget = writes / rate * 3 + 120
    try:
        for name in names:
            p = subprocess.Popen(
                [sys.executable, "-m", "bench._peers", "--mode", mode, "--name", name,
                 "--interval", str(interval), "--seconds", str(budget + 60)],
                stdout=subprocess.PIPE, stderr=(log_dir / f"{mode}-{name}.log").open("a"),
                text=True, env=child_env(), cwd=ROOT, start_new_session=True)
            procs.append(p)
            assert p.stdout is not None
            line = p.stdout.readline()
            if not line:
                raise RuntimeError(f"{mode} peer {name} did not start")
            ready.append(json.loads(line))
        ctl = [f"http://127.0.0.1:{r['control']}" for r in ready]
        for i in range(n):
            port = "data" if mode == "crdt" else "control"
            _http(f"{ctl[i]}/peers", [f"127.0.0.1:{ready[j][port]}" for j in range(n) if j != i])
        key = secrets.token_bytes(32)

        def h(value: str) -> str:
            return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]

        vec = vectors(writes, seed=3)
        bodies = [json.dumps({"id": f"{names[k % n]}/{k // n + 1}",
                              "embedding": base64.b64encode(vec[k].tobytes()).decode(),
                              "meta": {"team": h("bench"), "k": h(str(k))}}).encode()
                  for k in range(writes)]

        def write(k: int) -> None:
            req = urllib.request.Request(f"{ctl[k % n]}/write", data=bodies[k], method="POST")
            with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310
                r.read()

        def probe(url: str) -> Callable[[], dict[str, int]]:
            return lambda: {o: int(s) for o, s in _http(f"{url}/vv").items()}

        watcher = Watcher([probe(u) for u in ctl], names, poll_ms=poll_ms)
        base = watcher.start()
        s0 = [_http(f"{u}/stats") for u in ctl]
        records = watcher.run_writes(writes, rate, write, base, budget)
        timeout = max(10.0, 3 * interval + 5)
        watcher.wait_visible(records, timeout)
        s1 = [_http(f"{u}/stats") for u in ctl]
        watcher.stop()
        result = watcher.analyse(records, timeout)
        sent = sum(b["bytes_sent"] - a["bytes_sent"] for a, b in zip(s0, s1, strict=True))
        msgs = sum(b["messages_sent"] - a["messages_sent"] for a, b in zip(s0, s1, strict=True))
        result.update({"bytes_sent_total": sent, "messages_sent": msgs,
                       "bytes_per_entry": round(sent / (writes * (n - 1)), 1)})
        return result
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)


def run(args: argparse.Namespace) -> int:
    quick = bool(args.quick)
    n, rate = args.nodes, args.rate
    writes = args.writes or (60 if quick else 200)
    out = args.json or RESULTS / ("sidebyside-quick.json" if quick else "sidebyside.json")
    plot = args.plot or out.with_suffix(".png")
    work = Path(tempfile.mkdtemp(prefix="memnode-bench-sbs-"))
    result: dict[str, Any] = {
        "benchmark": "sidebyside", "quick": quick,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "machine": machine_info(), "nodes": n, "writes": writes, "rate": rate,
        "reference_s": REFERENCE_S, "systems": [],
    }
    try:
        say(f"memnode: {n} nodes, {writes} writes at {rate:g}/s")
        m = measure(MeshOptions(nodes=n), writes, rate, work / "memnode",
                    poll_ms=args.poll_ms, log=say)
        result["systems"].append({"name": "memnode", **_keep(m)})
        say(f"naive full-state pull every {args.interval:g}s")
        nv = baseline("naive", n, writes, rate, args.interval, args.poll_ms, work)
        result["systems"].append({"name": f"naive pull {args.interval:g}s", **_keep(nv)})
        try:
            import pycrdt  # noqa: F401

            say("pycrdt (Yrs) full mesh")
            cr = baseline("crdt", n, writes, rate, args.interval, args.poll_ms, work)
            result["systems"].append({"name": "pycrdt (Yrs)", **_keep(cr)})
        except ImportError:
            result["systems"].append({"name": "pycrdt (Yrs)",
                                      "skipped": "pycrdt not installed (pip install pycrdt)"})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for s in result["systems"]:
        p99 = s.get("latency_ms", {}).get("p99")
        if p99 is not None:
            s["reference_ratio_p99"] = round(p99 / 1000 / REFERENCE_S, 4)
    result["loadavg_at_end"] = load_average()
    write_json(out, result)
    from bench import _plots

    if _plots.sidebyside(result, plot):
        result["plot"] = str(plot)
    print(table(result))
    say(f"results in {out}")
    return 0


def _keep(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("propagation_rate", "latency_ms", "from_request_ms", "ack_ms", "bytes_per_entry",
            "bytes_sent_total", "cpu_seconds_per_node", "visible_before_ack", "poll")
    return {k: r[k] for k in keys if k in r}


def table(r: dict[str, Any]) -> str:
    lines = [f"{r['nodes']} peers, {r['writes']} writes at {r['rate']:g}/s, loopback",
             "system | propagated | p50 ms | p99 ms | max ms | bytes/entry | p99 vs 2.01 s",
             "--- | --- | --- | --- | --- | --- | ---",
             f"reference (published) | 100% | | | {r['reference_s'] * 1000:.0f} | | 1x"]
    for s in r["systems"]:
        if "skipped" in s:
            lines.append(f"{s['name']} | skipped: {s['skipped']}")
            continue
        lat = s["latency_ms"]
        lines.append(f"{s['name']} | {s['propagation_rate']:.1%} | {lat['p50']} | {lat['p99']} "
                     f"| {lat['max']} | {s['bytes_per_entry']:,} | "
                     f"{s.get('reference_ratio_p99')}x")
    return "\n".join(lines)
