"""What the discovery tests share: a namespaced lab (tests/netns/netlab.py) for the
multi-host tests, programs started inside its namespaces with a stdin pipe, and a
reader of the probe's JSON lines that waits (on a condition variable, with a deadline:
no sleeping) until the latest state satisfies a predicate."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from helpers import wait_for
from netlab import Netlab, NetlabUnavailable

HERE = Path(__file__).resolve().parent
State = dict[str, Any]


def make_lab(n: int) -> Iterator[Netlab]:
    lab = Netlab(n)
    try:
        lab.create()
    except NetlabUnavailable as exc:
        pytest.skip(f"multi-host discovery test needs network namespaces: {exc}")
    try:
        yield lab
    finally:
        lab.teardown()
    wait_for(lambda: not lab.leftovers(), "the lab's interfaces and namespaces to go", 10)


def spawn(lab: Netlab, netns: str, program: str, args: Sequence[str], log: Path,
          ) -> subprocess.Popen[bytes]:
    """``python tests/discovery/PROGRAM ARGS`` inside ``netns``: stdout piped, stdin
    piped (closing it ends the program), stderr to ``log``."""
    cmd = ["ip", "netns", "exec", netns, sys.executable, str(HERE / program), *args]
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, start_new_session=True)
    lab.procs.append(proc)
    return proc


def send(proc: subprocess.Popen[bytes], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line.encode() + b"\n")
    proc.stdin.flush()


class JsonLines:
    """A thread that reads ``proc``'s stdout line by line into ``lines``."""

    def __init__(self, proc: subprocess.Popen[bytes], label: str) -> None:
        self.proc, self.label = proc, label
        self.lines: list[State] = []
        self.closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = {"event": "garbage", "text": raw.decode(errors="replace")}
            with self._cond:
                self.lines.append(obj)
                self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def latest(self, event: str = "state") -> State | None:
        with self._cond:
            return next((x for x in reversed(self.lines) if x.get("event") == event), None)

    def wait(self, pred: Callable[[State], bool], what: str, timeout: float,
             event: str = "state") -> State:
        """The latest ``event`` line once ``pred`` holds for it; AssertionError naming
        ``what`` and the last lines at the deadline or if the program exits first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                last = next((x for x in reversed(self.lines) if x.get("event") == event),
                            None)
                if last is not None and pred(last):
                    return last
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError(
                        f"{self.label}: timed out after {timeout}s waiting for {what}"
                        f"{' (it exited)' if self.closed else ''}; last lines: "
                        f"{self.lines[-5:]}")
                self._cond.wait(left)


def candidates(state: State) -> set[str]:
    return set(state.get("candidates", ()))
