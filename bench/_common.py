"""Shared by the benchmarks: statistics, loops bounded in count and time, timed
processes (``memnode serve`` as a user starts it), machine facts and result files.

Nothing here imports chromadb, torch or memnode's node: a benchmark pays only for what
it measures.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


# -- statistics ------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), ``q`` in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """n, p50/p95/p99/mean/min/max in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(sum(ms) / len(ms), 3) if ms else float("nan"),
        "min_ms": round(min(ms), 3) if ms else float("nan"),
        "max_ms": round(max(ms), 3) if ms else float("nan"),
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


# -- bounded loops ---------------------------------------------------------------------


class Budget:
    """Bounds a loop in count and in wall time::

        budget = Budget(max_count=500, seconds=120)
        while budget.more():
            ...
            budget.tick()

    ``cut_short`` tells afterwards whether time (not count) ended the loop.
    """

    def __init__(self, max_count: int, seconds: float) -> None:
        self.max_count = max_count
        self.seconds = seconds
        self.count = 0
        self.deadline = time.monotonic() + seconds
        self.cut_short = False

    def more(self) -> bool:
        if self.count >= self.max_count:
            return False
        if time.monotonic() >= self.deadline:
            self.cut_short = True
            return False
        return True

    def tick(self, n: int = 1) -> None:
        self.count += n

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


# -- processes -------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """The environment of every child: offline, no telemetry, and no MEMNODE_* variable
    of the caller's shell, so that nodes run with their documented defaults."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMNODE_")}
    env.update(ANONYMIZED_TELEMETRY="False", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_HUB_DISABLE_TELEMETRY="1", PYTHONDONTWRITEBYTECODE="1")
    pythonpath = [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    env.update(extra)
    return env


def memnode_cmd() -> list[str]:
    """The ``memnode`` entry point installed next to this interpreter (what a user runs),
    else ``python -m memnode.cli.main``."""
    script = Path(sys.executable).parent / "memnode"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "memnode.cli.main"]


def timed_run(cmd: Sequence[str], timeout: float, env: dict[str, str] | None = None) -> float:
    """Wall time of one subprocess from spawn to exit; raises if it fails."""
    started = time.perf_counter()
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                          env=env or child_env(), cwd=ROOT)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return elapsed


def run_json_child(cmd: Sequence[str], timeout: float, log_path: Path) -> dict[str, Any]:
    """Run a benchmark child; its last stdout line is a JSON object. stderr goes to
    ``log_path``."""
    with log_path.open("a") as log:
        proc = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=log, text=True,
                              timeout=timeout, env=child_env(), cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... exited {proc.returncode}; "
                           f"log tail:\n{tail(log_path)}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


class ServeProcess:
    """``memnode serve`` in its own process group, on loopback, port 0.

    ``start()`` returns the seconds from spawn to the JSON "ready" line on stdout.
    ``stop()`` sends SIGTERM (graceful shutdown) and, past its timeout, SIGKILL to the
    group of this one child (never to anything else).
    """

    def __init__(self, data_dir: Path, embedder: str, log_path: Path,
                 extra: Sequence[str] = ()) -> None:
        self.data_dir = data_dir
        self.embedder = embedder
        self.log_path = log_path
        self.extra = list(extra)
        self.proc: subprocess.Popen[str] | None = None
        self.ready: dict[str, Any] = {}
        self._lines: queue.Queue[str | None] = queue.Queue()

    @property
    def addr(self) -> str:
        return str(self.ready["listen"])

    def command(self) -> list[str]:
        return [*memnode_cmd(), "--log-level", "WARNING", "serve",
                "--data-dir", str(self.data_dir), "--listen", "127.0.0.1:0",
                "--embedder", self.embedder, *self.extra]

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def start(self, timeout: float = 300.0) -> float:
        log = self.log_path.open("a")
        started = time.perf_counter()
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=log,
                                     text=True, env=child_env(), cwd=ROOT,
                                     start_new_session=True)
        log.close()
        threading.Thread(target=self._read, daemon=True, name="serve-stdout").start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop(timeout=5)
                raise TimeoutError(f"memnode serve not ready after {timeout}s; log tail:\n"
                                   f"{tail(self.log_path)}") from None
            if line is None:
                code = self.proc.wait(10)
                raise RuntimeError(f"memnode serve exited {code} before ready; log tail:\n"
                                   f"{tail(self.log_path)}")
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and event.get("event") == "ready":
                self.ready = event
                return time.perf_counter() - started

    def stop(self, timeout: float = 60.0) -> int | None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait(10)

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- facts and files -------------------------------------------------------------------


def _version(module: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, timeout=10)
        dirty = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain",
                                "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True, timeout=10)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {
        "cpus": cpus,
        "loadavg_at_start": load_average(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "memnode_revision": git_revision(),
        "versions": {m: _version(m) for m in ("chromadb", "grpcio", "sentence-transformers",
                                              "torch", "onnxruntime")},
    }


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages: how busy the shared machine was."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
