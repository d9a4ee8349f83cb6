"""A full disk on one host for a while: that host's data dir lives on a small tmpfs
(``Cluster(small_disk=...)``), and a filler file next to the data dir takes every free
byte, for a random time, then is removed. The node must refuse writes (readiness
NOT_SERVING), keep what it acknowledged, and take the events it could not apply again
once there is room."""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass

from bench.chaos._driver import Driver

CHUNK = 1 << 20


@dataclass
class DiskDriver(Driver):
    interval: float = 8.0
    probability: float = 0.4
    hold_seconds: tuple[float, float] = (3.0, 10.0)
    name = "disk"

    def step(self) -> None:
        pods = [p for p in self.cluster.pods if p.disk is not None]
        if not pods or self.rng.random() >= self.probability:
            return
        pod = self.rng.choice(pods)
        assert pod.disk is not None
        filler = pod.disk / "filler"
        written = 0
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (CHUNK, 4096):  # megabytes, then the last pages
                for _ in range((self.cluster.small_disk_mb + 8) * (CHUNK // size)):
                    try:
                        written += os.write(fd, b"\0" * size)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        seconds = self.rng.uniform(*self.hold_seconds)
        self.hold(seconds)
        self.heal()
        self.note("disk_full", f"{pod.name} ({written >> 20} MB filler)", seconds)

    def heal(self) -> None:
        for pod in self.cluster.pods:
            if pod.disk is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(pod.disk / "filler")
