"""/api/segments/{id}/members and /api/profiles/{id}: answered by the owning workers."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from segstream.api.cluster import partition_for
from segstream.api.context import ApiContext
from segstream.api.cursor import CursorError, decode_cursor, walk_members
from segstream.api.errors import invalid, not_found
from segstream.api.forward import call_owner
from segstream.api.limits import query_int
from segstream.api.local import members_after, profile_view
from segstream.errors import Problem

__all__ = ["ReadHandlers"]

MAX_PAGE = 1000
MAX_ACTIVITY = 500


class ReadHandlers:
    """Handlers of the member and profile endpoints."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def members(self, request: web.Request) -> web.Response:
        """GET /api/segments/{id}/members?cursor=&limit=."""
        segment_id = request.match_info["id"]
        limit = query_int(request.query.get("limit"), "limit", 100, 1, MAX_PAGE)
        if isinstance(limit, Problem):
            raise invalid("invalid_parameter", [limit])
        view = self.ctx.view
        partitions = await view.partitions()
        start: tuple[int, str | None] = (0, None)
        cursor = request.query.get("cursor")
        if cursor:
            try:
                start = decode_cursor(cursor, partitions)
            except CursorError as exc:
                raise invalid("invalid_parameter", [Problem("cursor", str(exc))]) from None
        await view.refresh()
        if segment_id not in view.definitions:
            raise not_found("segment_not_found", f"there is no segment '{segment_id}'")

        async def fetch(partition: int, after: str | None, wanted: int) -> list[str]:
            return await self._members(partition, segment_id, after, wanted)

        page = await walk_members(fetch, partitions, start, limit)
        return web.json_response(
            {
                "segment_id": segment_id,
                "members": [{"profile_id": pid, "partition": p} for p, pid in page.members],
                "next_cursor": page.next_cursor,
            }
        )

    async def _members(
        self, partition: int, segment_id: str, after: str | None, limit: int
    ) -> list[str]:
        if self.ctx.is_local(partition):
            return members_after(self.ctx.worker, partition, segment_id, after, limit)
        params = {"limit": str(limit)}
        if after is not None:
            params["after"] = after
        answer = await call_owner(
            self.ctx,
            partition,
            "GET",
            f"/internal/partitions/{partition}/segments/{segment_id}/members",
            params=params,
        )
        return [str(pid) for pid in answer["members"]]

    async def profile(self, request: web.Request) -> web.Response:
        """GET /api/profiles/{id}: routed to the worker owning the profile's partition."""
        profile_id = request.match_info["profile_id"]
        activity = query_int(request.query.get("activity"), "activity", 50, 0, MAX_ACTIVITY)
        if isinstance(activity, Problem):
            raise invalid("invalid_parameter", [activity])
        if not 1 <= len(profile_id) <= 256:
            raise invalid("invalid_parameter", [Problem("id", "a profile id has 1-256 chars")])
        partitions = await self.ctx.view.partitions()
        partition = partition_for(profile_id, partitions)
        if self.ctx.is_local(partition):
            found = profile_view(self.ctx.worker, partition, profile_id, activity)
        else:
            await self.ctx.view.refresh()
            found = await call_owner(
                self.ctx,
                partition,
                "GET",
                f"/internal/partitions/{partition}/profiles/{quote(profile_id, safe='')}",
                params={"activity": str(activity)},
            )
        if found is None:
            raise not_found("profile_not_found", f"there is no profile '{profile_id}'")
        return web.json_response(found)
