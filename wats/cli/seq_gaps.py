"""Spot lost events from the sequence numbers of the bus envelopes.

PUB/SUB drops messages silently when a subscriber falls behind. Each publisher numbers its
envelopes per message type (``seq`` from 1; 0 = not part of a stream), so a jump in one sender's
numbers for one type tells the viewer that what it shows is incomplete.
"""

from __future__ import annotations


class SeqGaps:
    """Last ``seq`` seen per (sender, type) and the number of events skipped per sender."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], int] = {}
        self.missed: dict[str, int] = {}

    def observe(self, src: str, event_type: str, seq: int) -> int:
        """Record one envelope; return how many events of this stream were skipped before it.

        The first envelope of a stream is never a gap (we joined mid-stream), and a sequence that
        goes back means the sender restarted and counts afresh.
        """
        if seq <= 0:
            return 0
        key = (src, event_type)
        previous = self.last.get(key)
        self.last[key] = seq
        if previous is None or seq <= previous:
            return 0
        skipped = seq - previous - 1
        if skipped:
            self.missed[src] = self.missed.get(src, 0) + skipped
        return skipped

    @property
    def total(self) -> int:
        """All events known to be missed, over all senders."""
        return sum(self.missed.values())
