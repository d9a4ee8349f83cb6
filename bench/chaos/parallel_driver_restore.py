"""A host wiped and restored from a backup taken earlier in the drill: an online backup
of a random host (not the small-disk one), writes going on for a while, then kill -9 of
both processes, the data dir deleted, ``memnode restore`` from the backup, and the pod
started again. The restored node learns its own seq from its peers before it writes;
the texts of its memories acknowledged after the backup began are gone (text never
leaves its node): they come back by id with an empty text and are counted in its
``lost_texts``. The checker exempts exactly those from the exact-text check
(:attr:`RestoreDriver.windows`) and requires them everywhere by id.

What it found, with kills and partitions beside it (each fixed, with a regression test
in tests/federation/test_fed_restore.py): a restored node ending its restore at the
first peer's word, or once ``restore_wait_ticks`` ran out while the peer holding its
latest events was cut off, and reusing those seqs (it now waits for every origin its
backup knew while membership still counts it); a forget written after the backup and
collected since, resurrected on the restored origin (its own GC floor now counts while
it restores, and reconciliation runs before the restore ends); a PUT and its FORGET
taken back in one batch failing the batch (tests/lifecycle/test_restore_batch.py)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

from bench._common import child_env, memnode_cmd
from bench.chaos._driver import Driver
from bench.chaos.pods import PROCESSES


@dataclass
class RestoreDriver(Driver):
    interval: float = 20.0
    probability: float = 0.5
    max_restores: int = 3
    after_backup: tuple[float, float] = (3.0, 10.0)  # writes go on this long
    #: pod index -> (backup began, data wiped), drill seconds, for each restore done
    windows: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    name = "restore"

    def step(self) -> None:
        from memnode import Client
        from memnode.errors import Unavailable

        pods = [p for p in self.cluster.pods if p.disk is None]
        if (not pods or sum(map(len, self.windows.values())) >= self.max_restores
                or self.rng.random() >= self.probability):
            return
        pod = self.rng.choice(pods)
        k = sum(map(len, self.windows.values()))
        out = self.cluster.work / f"backup-{pod.name}-{k}"
        began = self.now()
        try:
            with pod.lock, Client(pod.addr, timeout=60) as client:
                client.backup(out)
        except Unavailable as exc:  # the kill driver has it down: no backup, no restore
            self.note("backup_skipped", f"{pod.name}: {str(exc)[:120]}")
            return
        self.hold(self.rng.uniform(*self.after_backup))
        with pod.lock:
            pod.kill9(PROCESSES)
            self.windows.setdefault(pod.index, []).append((began, self.now()))
            shutil.rmtree(pod.data)
            done = subprocess.run([*memnode_cmd(), "restore", "--data-dir", str(pod.data),
                                   "--quiet", str(out)], capture_output=True, text=True,
                                  env=child_env(), timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"restore of {pod.name} failed: {done.stderr[-500:]}")
            pod.start(PROCESSES)
        self.note("wipe_restore", f"{pod.name} from the backup of {began:.1f}s",
                  self.now() - began)
