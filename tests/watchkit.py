"""Consuming a Watch stream in a test: a thread collects, the test waits with a deadline."""

from __future__ import annotations

import threading

from memnode import Change, Watch

from helpers import wait_for


class Collector:
    """Consumes a watch in a thread; ``stop_after`` items, then closes it."""

    def __init__(self, watch: Watch, stop_after: int = 0) -> None:
        self.watch = watch
        self.items: list[Change] = []
        self.error: BaseException | None = None
        self.ended = threading.Event()
        self._stop_after = stop_after
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            for change in self.watch:
                self.items.append(change)
                if len(self.items) == self._stop_after:
                    self.watch.close()
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            self.error = exc
        finally:
            self.ended.set()

    def wait(self, n: int, what: str) -> list[Change]:
        wait_for(lambda: len(self.items) >= n or self.error, what, timeout=15)
        assert self.error is None, self.error
        return self.items
