"""Reading a probe's JSON lines as they come, and waiting (with a deadline, on a
condition variable: no sleeping) until its latest state satisfies a predicate."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

State = dict[str, Any]


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
