"""/internal/...: what one worker asks the owner of a partition (never forwarded again)."""

from __future__ import annotations

from aiohttp import web

from segstream.api.context import ApiContext
from segstream.api.errors import ApiError, invalid
from segstream.api.http import read_json
from segstream.api.limits import MAX_SAMPLE, definition_limits, query_int
from segstream.api.local import members_after, preview_partition, profile_view
from segstream.api.reads import MAX_ACTIVITY, MAX_PAGE
from segstream.errors import Problem

__all__ = ["InternalHandlers"]


class InternalHandlers:
    """Partition-local answers for peers (the peer token required when a token is configured)."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def _partition(self, request: web.Request) -> int:
        text = request.match_info["partition"]
        if not text.isascii() or not text.isdigit():
            raise invalid("invalid_parameter", [Problem("partition", "must be an integer")])
        return int(text)

    async def members(self, request: web.Request) -> web.Response:
        """GET /internal/partitions/{partition}/segments/{id}/members?after=&limit=."""
        limit = query_int(request.query.get("limit"), "limit", 100, 1, MAX_PAGE)
        if isinstance(limit, Problem):
            raise invalid("invalid_parameter", [limit])
        found = members_after(
            self.ctx.worker,
            self._partition(request),
            request.match_info["id"],
            request.query.get("after"),
            limit,
        )
        return web.json_response({"members": found})

    async def profile(self, request: web.Request) -> web.Response:
        """GET /internal/partitions/{partition}/profiles/{id} (null when there is none)."""
        activity = query_int(request.query.get("activity"), "activity", 50, 0, MAX_ACTIVITY)
        if isinstance(activity, Problem):
            raise invalid("invalid_parameter", [activity])
        found = profile_view(
            self.ctx.worker, self._partition(request), request.match_info["profile_id"], activity
        )
        return web.json_response(found)

    async def preview(self, request: web.Request) -> web.Response:
        """POST /internal/preview {definition, partition, now, sample}."""
        body = await read_json(request, self.ctx.settings.api_max_body_bytes)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "expected a JSON object")
        draft, partition = body.get("definition"), body.get("partition")
        now, sample = body.get("now"), body.get("sample")
        if type(partition) is not int or type(now) is not int or type(sample) is not int:
            raise ApiError(400, "invalid_request", "partition, now and sample must be integers")
        if not isinstance(draft, dict):
            raise ApiError(400, "invalid_request", "definition must be a JSON object")
        if not 0 <= sample <= MAX_SAMPLE:
            raise ApiError(400, "invalid_request", f"sample is from 0 to {MAX_SAMPLE}")
        problems = definition_limits(draft)
        if problems:
            raise invalid("definition_too_large", problems)
        # Validated again by preview_partition, against this owner's definitions.
        with self.ctx.preview_slot(self.ctx.peer_previews):
            part = await preview_partition(self.ctx.worker, partition, draft, now, sample)
        return web.json_response(part.as_json())
