"""GET /api/segments/{id}/members.csv and .jsonl: every member, streamed from all partitions.

The export walks the partitions in order, each in profile-id order (as the members API pages),
one page of EXPORT_PAGE members at a time: from the local store when this worker owns the
partition, else from its owner (`/internal/.../export`). Each page is written to the client
before the next is read, so a worker's memory does not grow with the segment.

What can fail before the first byte (unknown segment, bad parameter, a partition nobody
serves) is an ordinary JSON error. A failure once the body has begun cannot change the status
any more: the worker logs it and cuts the connection before the final chunk, so a client sees
an incomplete transfer, never a short export that looks complete.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from segstream.api.context import ApiContext
from segstream.api.errors import invalid, not_found
from segstream.api.export_format import (
    FORMATS,
    ExportRow,
    csv_header,
    csv_rows,
    jsonl_rows,
    parse_traits,
    trait_values,
)
from segstream.api.forward import call_owner
from segstream.api.limits import query_int
from segstream.api.local import WorkerView, owned_store
from segstream.app.store import profile_key
from segstream.errors import Problem
from segstream.state.layout import load_profile

__all__ = ["EXPORT_PAGE", "ExportHandlers", "export_page"]

log = logging.getLogger("segstream.api")

#: Members read (and written to the client) per step.
EXPORT_PAGE = 1000


def export_page(
    worker: WorkerView,
    partition: int,
    segment_id: str,
    after: str | None,
    limit: int,
    paths: list[str],
) -> list[ExportRow]:
    """Up to `limit` members of one owned partition after `after`, with their entered
    instant and the values at `paths` of their traits."""
    _owner, store = owned_store(worker, partition)
    entries = store.member_entries_after(segment_id, after, limit)
    if not paths:
        return [(pid, entered, []) for pid, entered in entries]
    rows: list[ExportRow] = []
    for pid, entered in entries:
        raw = store.get(profile_key(pid))
        traits: dict[str, Any] = {}
        if raw is not None:
            traits = load_profile(pid, raw, store.scan, for_update=False).traits
        rows.append((pid, entered, trait_values(traits, paths)))
    return rows


class ExportHandlers:
    """The public export endpoints and the page a peer serves for them."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def csv(self, request: web.Request) -> web.StreamResponse:
        """GET /api/segments/{id}/members.csv?traits=a,b."""
        return await self._export(request, "csv")

    async def jsonl(self, request: web.Request) -> web.StreamResponse:
        """GET /api/segments/{id}/members.jsonl?traits=a,b."""
        return await self._export(request, "jsonl")

    async def page(self, request: web.Request) -> web.Response:
        """GET /internal/partitions/{partition}/segments/{id}/export?after=&limit=&traits=."""
        text = request.match_info["partition"]
        if not text.isascii() or not text.isdigit():
            raise invalid("invalid_parameter", [Problem("partition", "must be an integer")])
        limit = query_int(request.query.get("limit"), "limit", EXPORT_PAGE, 1, EXPORT_PAGE)
        paths = parse_traits(request.query.get("traits"))
        problems = [p for p in (limit, paths) if isinstance(p, Problem)]
        if problems:
            raise invalid("invalid_parameter", problems)
        assert isinstance(limit, int) and isinstance(paths, list)
        rows = export_page(
            self.ctx.worker,
            int(text),
            request.match_info["id"],
            request.query.get("after"),
            limit,
            paths,
        )
        return web.json_response({"rows": rows})

    async def _export(self, request: web.Request, fmt: str) -> web.StreamResponse:
        segment_id = request.match_info["id"]
        paths = parse_traits(request.query.get("traits"))
        if isinstance(paths, Problem):
            raise invalid("invalid_parameter", [paths])
        view = self.ctx.view
        partitions = await view.partitions()
        await view.refresh()
        if segment_id not in view.definitions:
            raise not_found("segment_not_found", f"there is no segment '{segment_id}'")
        # The first page before the headers: a partition nobody serves is still a 503.
        first = await self._page(0, segment_id, None, paths)
        response = web.StreamResponse(
            headers={
                "Content-Type": FORMATS[fmt],
                "Content-Disposition": f'attachment; filename="{segment_id}-members.{fmt}"',
                "Cache-Control": "no-store",
            }
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            if fmt == "csv":
                await response.write(csv_header(paths).encode())
            rows: list[ExportRow] | None = first
            for partition in range(partitions):
                after: str | None = None
                while True:
                    if rows is None:
                        rows = await self._page(partition, segment_id, after, paths)
                    if rows:
                        body = csv_rows(rows).encode() if fmt == "csv" else jsonl_rows(rows, paths)
                        await response.write(body)
                        after = rows[-1][0]
                    done = len(rows) < EXPORT_PAGE
                    rows = None
                    if done:
                        break
                    await asyncio.sleep(0)  # live records between pages
        except ConnectionError:
            raise  # the client went away
        except Exception as exc:  # ApiError from a peer included: the status is sent
            log.warning("export of %s cut off: %s", segment_id, exc)
            transport = request.transport
            if transport is not None:
                transport.abort()
            return response
        await response.write_eof()
        return response

    async def _page(
        self, partition: int, segment_id: str, after: str | None, paths: list[str]
    ) -> list[ExportRow]:
        if self.ctx.is_local(partition):
            return export_page(self.ctx.worker, partition, segment_id, after, EXPORT_PAGE, paths)
        params = {"limit": str(EXPORT_PAGE)}
        if after is not None:
            params["after"] = after
        if paths:
            params["traits"] = ",".join(paths)
        answer = await call_owner(
            self.ctx,
            partition,
            "GET",
            f"/internal/partitions/{partition}/segments/{segment_id}/export",
            params=params,
        )
        return [(str(pid), int(entered), list(values)) for pid, entered, values in answer["rows"]]
