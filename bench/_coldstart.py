"""Cold start: wall time of fresh processes, as a user meets them.

- the CLI client: ``memnode status --addr ...`` against a running node, spawn to exit;
- ``memnode serve``: spawn to the JSON "ready" line on stdout, on a fresh data dir;
- references: ``python -c pass`` and ``python -c "import sentence_transformers"``.

Runs of different commands alternate round by round, so the machine's noise falls on
all of them alike; figures are medians.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench._common import Budget, ServeProcess, child_env, median, memnode_cmd, timed_run

SERVE_EMBEDDERS = ("test-hash", "minilm-int8", "minilm")


def _entry(runs: list[float], command: str) -> dict[str, Any]:
    return {"command": command, "runs_s": [round(r, 3) for r in runs],
            "median_s": round(median(runs), 3) if runs else None}


def run(work: Path, *, cli_runs: int, serve_runs: int, seconds: float) -> dict[str, Any]:
    py = sys.executable
    env = child_env()
    times: dict[str, list[float]] = {"python_pass": [], "cli_status": [],
                                     "import_sentence_transformers": []}
    times.update({f"serve_{e}": [] for e in SERVE_EMBEDDERS})
    log = work / "coldstart.log"
    with ServeProcess(work / "status-node", "test-hash", log) as node:
        node.start(timeout=300)
        cli = [*memnode_cmd(), "status", "--addr", node.addr]
        timed_run(cli, 60, env)  # warm the page cache once, not timed
        timed_run([py, "-c", "pass"], 60, env)
        budget = Budget(max_count=cli_runs, seconds=seconds / 4)
        while budget.more():
            times["python_pass"].append(timed_run([py, "-c", "pass"], 60, env))
            times["cli_status"].append(timed_run(cli, 60, env))
            budget.tick()

    heavy = Budget(max_count=serve_runs, seconds=seconds * 3 / 4)
    while heavy.more():
        r = heavy.count
        times["import_sentence_transformers"].append(
            timed_run([py, "-c", "import sentence_transformers"], 300, env))
        for embedder in SERVE_EMBEDDERS:
            with ServeProcess(work / f"serve-{embedder}-{r}", embedder, log) as node:
                times[f"serve_{embedder}"].append(node.start(timeout=600))
        heavy.tick()

    memnode = " ".join(Path(c).name if i == 0 else c for i, c in enumerate(memnode_cmd()))
    commands = {
        "python_pass": "python -c pass",
        "cli_status": f"{memnode} status --addr 127.0.0.1:PORT",
        "import_sentence_transformers": 'python -c "import sentence_transformers"',
    }
    commands.update({f"serve_{e}": f"{memnode} serve --embedder {e} --data-dir NEW_DIR "
                     f"--listen 127.0.0.1:0 (to the ready line)" for e in SERVE_EMBEDDERS})
    out = {name: _entry(v, commands[name]) for name, v in times.items()}
    out["cut_short"] = budget.cut_short or heavy.cut_short  # type: ignore[assignment]
    return out
