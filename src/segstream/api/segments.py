"""/api/segments: list, create, read, replace, delete and preview segment definitions."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from segstream.api.context import ApiContext
from segstream.api.drafts import read_definition, read_draft
from segstream.api.errors import ApiError, invalid, not_found
from segstream.api.forward import call_owner
from segstream.api.limits import MAX_SAMPLE, query_int
from segstream.api.local import PreviewPart, preview_partition
from segstream.api.writer import ApiSegmentWriter, SegmentExists
from segstream.app.segment_writer import Applied, UnknownSegment
from segstream.errors import Problem

__all__ = ["SegmentHandlers"]

_STATUS = {"created": 201}


class SegmentHandlers:
    """Handlers of the segment endpoints."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def _row(self, segment_id: str) -> dict[str, Any]:
        view = self.ctx.view
        await view.refresh()
        definition = view.definitions.get(segment_id)
        if definition is None:
            raise not_found("segment_not_found", f"there is no segment '{segment_id}'")
        row = next(r for r in view.rows(await view.partitions()) if r.id == segment_id)
        return {**row.as_json(), "condition": definition["condition"]}

    async def list(self, request: web.Request) -> web.Response:
        """GET /api/segments."""
        view = self.ctx.view
        await view.refresh()
        rows = view.rows(await view.partitions())
        return web.json_response({"segments": [row.as_json() for row in rows]})

    async def get(self, request: web.Request) -> web.Response:
        """GET /api/segments/{id}."""
        return web.json_response(await self._row(request.match_info["id"]))

    async def create(self, request: web.Request) -> web.Response:
        """POST /api/segments: a new segment (409 when the id is defined)."""
        raw = await self._definition(request)
        writer = ApiSegmentWriter(self.ctx.settings)
        try:
            async with writer:
                applied = await writer.create(raw)
        except SegmentExists as exc:
            raise ApiError(
                409, "segment_exists", f"segment '{exc}' exists; use PUT to change it"
            ) from None
        return self._written(applied, raw)

    async def replace(self, request: web.Request) -> web.Response:
        """PUT /api/segments/{id}: create or replace the definition."""
        segment_id = request.match_info["id"]
        raw = await self._definition(request)
        if isinstance(raw, dict):
            if "id" not in raw:
                raw = {"id": segment_id, **raw}
            elif raw["id"] != segment_id:
                raise invalid(
                    "invalid_definition",
                    [Problem("id", f"the id must be the one in the URL, '{segment_id}'")],
                )
        async with ApiSegmentWriter(self.ctx.settings) as writer:
            (applied,) = await writer.apply([raw])
        return self._written(applied, raw)

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE /api/segments/{id}: write the deletion marker."""
        segment_id = request.match_info["id"]
        try:
            async with ApiSegmentWriter(self.ctx.settings) as writer:
                version = await writer.delete(segment_id)
        except UnknownSegment:
            raise not_found("segment_not_found", f"there is no segment '{segment_id}'") from None
        self.ctx.view.note_written({"id": segment_id, "deleted": True, "version": version})
        return web.json_response({"id": segment_id, "deleted": True, "version": version})

    async def preview(self, request: web.Request) -> web.Response:
        """POST /api/segments/preview: evaluate a draft on every partition; writes nothing."""
        with self.ctx.preview_slot(self.ctx.previews):
            return await self._preview(request)

    async def _preview(self, request: web.Request) -> web.Response:
        sample = query_int(request.query.get("sample"), "sample", 20, 0, MAX_SAMPLE)
        if isinstance(sample, Problem):
            raise invalid("invalid_parameter", [sample])
        draft = await read_draft(request, self.ctx)
        view = self.ctx.view
        partitions = await view.partitions()
        now = time.time_ns() // 1000
        parts = await asyncio.gather(
            *(self._preview_part(p, draft, now, sample) for p in range(partitions))
        )
        total = PreviewPart()
        for part in parts:
            total.add(part, sample)
        edit = draft["id"] in view.definitions
        body: dict[str, Any] = {
            "id": draft["id"],
            "edit": edit,
            "profiles": total.profiles,
            "matching": total.matching,
            "sample": total.sample,
            "enter": total.enter if edit else None,
            "leave": total.leave if edit else None,
            "evaluated_at": _format(now),
        }
        return web.json_response(body)

    async def _preview_part(
        self, partition: int, draft: dict[str, Any], now: int, sample: int
    ) -> PreviewPart:
        if self.ctx.is_local(partition):
            return await preview_partition(self.ctx.worker, partition, draft, now, sample)
        answer = await call_owner(
            self.ctx,
            partition,
            "POST",
            "/internal/preview",
            body={"definition": draft, "partition": partition, "now": now, "sample": sample},
        )
        return PreviewPart(**answer)

    async def _definition(self, request: web.Request) -> object:
        return await read_definition(request, self.ctx)

    def _written(self, applied: Applied, raw: object) -> web.Response:
        if applied.outcome == "rejected":
            raise invalid("invalid_definition", applied.problems)
        assert isinstance(raw, dict)
        if applied.outcome != "unchanged":
            record = {"id": applied.label, "name": raw["name"]}
            if raw.get("description") is not None:
                record["description"] = raw["description"]
            self.ctx.view.note_written(
                {**record, "condition": raw["condition"], "version": applied.version}
            )
        body = {
            "id": applied.label,
            "name": raw["name"],
            "description": raw.get("description"),
            "condition": raw["condition"],
            "version": applied.version,
            "outcome": applied.outcome,
        }
        return web.json_response(body, status=_STATUS.get(applied.outcome, 200))


def _format(us: int) -> str:
    from segstream.timefmt import format_instant

    return format_instant(us)
