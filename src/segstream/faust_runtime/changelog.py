"""A Faust table that hands back the changelog records it sends, so that a record is
acknowledged only once the state it wrote is in the changelog.

Faust commits an input offset once the record is acknowledged, after flushing its producer
(`Consumer._commit_offsets`). But that flush does not wait for the table writes: the changelog
records go through Faust's `ProducerBuffer`, whose `flush` returns as soon as no record has
left the buffer for 0.1 s (faust-streaming 0.15.3 `transport/producer.py`,
`ProducerBuffer.flush_atmost`; upstream master still has it). On a loaded machine a record can
sit there longer, so Faust can commit the offsets of records whose state never reaches the
changelog; after a kill -9 the next owner restores a state without them and never reads them
again: later transitions of those profiles come out wrong or not at all (docs/faust.md,
"Found and fixed"). The agent therefore takes the futures of the changelog records each record
sent (`take_sent`) and acknowledges the record when every one of them is done.
"""

from __future__ import annotations

from typing import Any

import faust

__all__ = ["ChangelogTrackingTable"]


class ChangelogTrackingTable(faust.Table[bytes, bytes]):
    """`faust.Table` keeping the future of every changelog record it sends (the `Table`
    setting of the app, documented by Faust)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sent: list[Any] = []

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        future = super().send_changelog(*args, **kwargs)
        self._sent.append(future)
        return future

    def take_sent(self) -> list[Any]:
        """The futures of the changelog records sent since the last call."""
        sent, self._sent = self._sent, []
        return sent
