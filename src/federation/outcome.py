"""What one input did to the replica state: counts, fresh events, effects."""

from __future__ import annotations

from dataclasses import dataclass, field

from federation.effects import Effect
from federation.events import Event
from federation.validate import RejectReason


@dataclass
class ApplyResult:
    """What one input did to the replica. ``fresh`` lists the events that were new to
    this node (applied, ignored-as-forgotten or buffered), for rumor forwarding."""

    applied: int = 0
    duplicates: int = 0
    buffered: int = 0
    overflow_dropped: int = 0
    ignored_forgotten: int = 0
    reconciled: int = 0
    resyncs_started: int = 0
    rejected: dict[RejectReason, int] = field(default_factory=dict)
    fresh: list[Event] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)

    def reject(self, reason: RejectReason, count: int = 1) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + count

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())
