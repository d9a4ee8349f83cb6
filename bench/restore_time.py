"""How long a backup pauses writes and a restore takes, for a node with N own memories.

    PYTHONPATH=src python bench/restore_time.py --memories 50000

In process, test-hash embedder (the figures are Chroma and SQLite work, not embedding).
Prints one JSON line: setup, backup (writes paused / total), restore (verify + lay out +
rebuild Chroma), first start after the restore.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def main() -> None:
    from memnode.config import NodeConfig
    from memnode.embedders import HashEmbedder
    from memnode.node.ingest import RememberInput
    from memnode.node.node import Node
    from memnode.storage import backup

    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    embedder = HashEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = NodeConfig(data_dir=root / "node", embedder="test-hash", sync="normal",
                         max_batch_items=args.batch)
        node = Node(cfg, embedder=embedder)
        started = time.perf_counter()
        for start in range(0, args.memories, args.batch):
            n = min(args.batch, args.memories - start)
            node.remember([RememberInput(f"memory number {start + i} about topic "
                                         f"{(start + i) % 97}".encode(), {"i": start + i})
                           for i in range(n)])
        setup = time.perf_counter() - started
        started = time.perf_counter()
        manifest = node.backup(_mkdir(root / "bk"))
        backup_total = time.perf_counter() - started
        node.close()
        started = time.perf_counter()
        report = backup.restore(root / "bk", root / "restored")
        restore_s = time.perf_counter() - started
        started = time.perf_counter()
        again = Node(cfg.model_copy(update={"data_dir": root / "restored",
                                            "restore_without_peers": True}), embedder=embedder)
        start_s = time.perf_counter() - started
        assert again.store.count_local() == args.memories
        again.close()
        size = sum(p.stat().st_size for p in (root / "bk").iterdir())
        print(json.dumps({
            "memories": args.memories, "setup_seconds": round(setup, 1),
            "backup_writes_paused_seconds": manifest["snapshot_seconds"],
            "backup_seconds": round(backup_total, 2), "backup_bytes": size,
            "restore_seconds": round(restore_s, 2), "restored_own": report.own_memories,
            "first_start_seconds": round(start_s, 2),
        }))


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


if __name__ == "__main__":
    main()
