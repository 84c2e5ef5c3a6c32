"""Segment writes for the API: SegmentWriter (SPEC §4.3) plus a create-only upsert."""

from __future__ import annotations

from typing import Any

from segstream.app.segment_writer import Applied, SegmentState, SegmentWriter

__all__ = ["ApiSegmentWriter", "SegmentExists"]


class SegmentExists(Exception):
    """A create named an id that is currently defined."""


class ApiSegmentWriter(SegmentWriter):
    """The segments-topic writer with a create that fails, atomically, on a defined id."""

    async def create(self, raw: object) -> Applied:
        """Write `raw` only when its id is not currently defined (checked in the transaction)."""

        async def plan(state: SegmentState) -> tuple[Applied, list[dict[str, Any]]]:
            segment_id = raw.get("id") if isinstance(raw, dict) else None
            if isinstance(segment_id, str) and segment_id in state.definitions:
                raise SegmentExists(segment_id)
            applied, record = state.plan_upsert(0, raw, self.settings.history_retention)
            return applied, [record] if record is not None else []

        return await self._write(plan)
