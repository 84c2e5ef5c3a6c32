"""Audience insight endpoints: why a profile is in a segment and until when, its timeline,
segment size over time and overlaps. Each question goes to the owner of the partition(s) it
needs (`/internal/insight` for peers); every answer is personal data (read token)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from segstream.api.cluster import partition_for
from segstream.api.context import ApiContext
from segstream.api.drafts import read_draft
from segstream.api.errors import ApiError, invalid, not_found
from segstream.api.forward import call_owner
from segstream.api.http import read_json
from segstream.api.insight_local import (
    explain_partition,
    overlap_partition,
    size_history_partition,
    timeline_partition,
)
from segstream.errors import Problem
from segstream.state.insight import MINUTE_RETENTION, RESOLUTIONS
from segstream.timefmt import format_instant, parse_datetime

__all__ = ["MAX_OVERLAP_SEGMENTS", "InsightHandlers"]

#: Segments one overlap request compares (pairs grow with the square).
MAX_OVERLAP_SEGMENTS = 10


def _now() -> int:
    return time.time_ns() // 1000


class InsightHandlers:
    """Public insight handlers and the peer-facing `/internal/insight`."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    # -- routing to owners ------------------------------------------------------------------
    async def _ask(self, partition: int, kind: str, args: dict[str, Any]) -> Any:
        if self.ctx.is_local(partition):
            return await self._local(kind, partition, args)
        await self.ctx.view.refresh()
        return await call_owner(
            self.ctx,
            partition,
            "POST",
            "/internal/insight",
            body={"kind": kind, "partition": partition, **args},
        )

    async def _local(self, kind: str, partition: int, args: dict[str, Any]) -> Any:
        worker = self.ctx.worker
        if kind == "explain":
            try:
                return await explain_partition(
                    worker,
                    partition,
                    args["profile_id"],
                    args["now"],
                    args.get("segment_id"),
                    args.get("definition"),
                )
            except KeyError:
                raise _no_segment(str(args.get("segment_id"))) from None
        if kind == "timeline":
            return timeline_partition(worker, partition, args["profile_id"])
        if kind == "history":
            return size_history_partition(
                worker, partition, args["segment_id"], args["resolution"], args["since"]
            )
        if kind == "overlap":
            return await overlap_partition(worker, partition, args["segments"])
        raise ApiError(400, "invalid_request", f"unknown insight kind {kind!r}")

    async def internal(self, request: web.Request) -> web.Response:
        """POST /internal/insight {kind, partition, ...}: answered from an owned partition."""
        body = await read_json(request, self.ctx.settings.api_max_body_bytes)
        if not isinstance(body, dict) or type(body.get("partition")) is not int:
            raise ApiError(400, "invalid_request", "expected {kind, partition, ...}")
        kind = str(body.pop("kind", ""))
        partition = body.pop("partition")
        return web.json_response(await self._local(kind, partition, body))

    async def _profile_partition(self, request: web.Request) -> tuple[str, int]:
        profile_id = request.match_info["profile_id"]
        if not 1 <= len(profile_id) <= 256:
            raise invalid("invalid_parameter", [Problem("id", "a profile id has 1-256 chars")])
        return profile_id, partition_for(profile_id, await self.ctx.view.partitions())

    # -- why, until when ---------------------------------------------------------------------
    async def explain(self, request: web.Request) -> web.Response:
        """GET /api/profiles/{id}/explain?segment=ID (without: every relevant segment)."""
        profile_id, partition = await self._profile_partition(request)
        segment_id = request.query.get("segment")
        args: dict[str, Any] = {"profile_id": profile_id, "now": _now()}
        if segment_id is not None:
            await self.ctx.view.refresh()
            if segment_id not in self.ctx.view.definitions:
                raise _no_segment(segment_id)
            args["segment_id"] = segment_id
        return self._found(await self._ask(partition, "explain", args), profile_id)

    async def explain_draft(self, request: web.Request) -> web.Response:
        """POST /api/profiles/{id}/explain with a draft definition (validated, 422 with paths)."""
        profile_id, partition = await self._profile_partition(request)
        draft = await read_draft(request, self.ctx)
        args = {"profile_id": profile_id, "now": _now(), "definition": draft}
        return self._found(await self._ask(partition, "explain", args), profile_id)

    async def timeline(self, request: web.Request) -> web.Response:
        """GET /api/profiles/{id}/timeline: the last 100 transitions, newest first."""
        profile_id, partition = await self._profile_partition(request)
        entries = await self._ask(partition, "timeline", {"profile_id": profile_id})
        if entries is None:
            raise not_found("profile_not_found", f"there is no profile '{profile_id}'")
        return web.json_response({"profile_id": profile_id, "transitions": entries})

    @staticmethod
    def _found(body: Any, profile_id: str) -> web.Response:
        if body is None:
            raise not_found("profile_not_found", f"there is no profile '{profile_id}'")
        return web.json_response(body)

    # -- size over time ----------------------------------------------------------------------
    async def history(self, request: web.Request) -> web.Response:
        """GET /api/segments/{id}/history?resolution=hour|minute&since=T."""
        segment_id = request.match_info["id"]
        resolution = request.query.get("resolution", "hour")
        if resolution not in RESOLUTIONS:
            raise invalid(
                "invalid_parameter", [Problem("resolution", "must be 'hour' or 'minute'")]
            )
        length = RESOLUTIONS[resolution][1]
        now = _now()
        keep = (
            MINUTE_RETENTION if resolution == "minute" else self.ctx.settings.size_history_retention
        )
        since = now - keep
        if "since" in request.query:
            try:
                since = max(since, parse_datetime(request.query["since"]))
            except ValueError as exc:
                raise invalid("invalid_parameter", [Problem("since", str(exc))]) from None
        since -= since % length
        view = self.ctx.view
        await view.refresh()
        if segment_id not in view.definitions:
            raise _no_segment(segment_id)
        partitions = await view.partitions()
        args = {"segment_id": segment_id, "resolution": resolution, "since": since}
        parts = await asyncio.gather(*(self._ask(p, "history", args) for p in range(partitions)))
        buckets = _merge_history(parts, since, now - now % length, length)
        return web.json_response(
            {
                "segment_id": segment_id,
                "resolution": resolution,
                "since": format_instant(since),
                "members": sum(part["members"] for part in parts),
                "buckets": buckets,
            }
        )

    # -- overlap -----------------------------------------------------------------------------
    async def overlap(self, request: web.Request) -> web.Response:
        """POST /api/segments/overlap {"segments": [a, b, ...]}: sizes and pairwise overlaps."""
        body = await read_json(request, self.ctx.settings.api_max_body_bytes)
        segments = body.get("segments") if isinstance(body, dict) else None
        if (
            not isinstance(segments, list)
            or not 2 <= len(segments) <= MAX_OVERLAP_SEGMENTS
            or not all(isinstance(s, str) for s in segments)
            or len(set(segments)) != len(segments)
        ):
            raise invalid(
                "invalid_request",
                [
                    Problem(
                        "segments",
                        f"2 to {MAX_OVERLAP_SEGMENTS} distinct segment ids are needed",
                    )
                ],
            )
        view = self.ctx.view
        await view.refresh()
        unknown = [
            Problem(f"segments[{i}]", f"there is no segment '{sid}'")
            for i, sid in enumerate(segments)
            if sid not in view.definitions
        ]
        if unknown:
            raise invalid("invalid_request", unknown)
        partitions = await view.partitions()
        args = {"segments": segments}
        parts = await asyncio.gather(*(self._ask(p, "overlap", args) for p in range(partitions)))
        sizes = [sum(part["sizes"][i] for part in parts) for i in range(len(segments))]
        both: dict[tuple[int, int], int] = {}
        for part in parts:
            for i, j, n in part["pairs"]:
                both[(i, j)] = both.get((i, j), 0) + n
        pairs = []
        for (i, j), n in sorted(both.items()):
            union = sizes[i] + sizes[j] - n
            pairs.append(
                {
                    "a": segments[i],
                    "b": segments[j],
                    "both": n,
                    "only_a": sizes[i] - n,
                    "only_b": sizes[j] - n,
                    "jaccard": round(n / union, 6) if union else None,
                }
            )
        return web.json_response(
            {
                "segments": [{"id": s, "members": n} for s, n in zip(segments, sizes, strict=True)],
                "pairs": pairs,
            }
        )


def _no_segment(segment_id: str) -> ApiError:
    return not_found("segment_not_found", f"there is no segment '{segment_id}'")


def _merge_history(
    parts: list[dict[str, Any]], since: int, last: int, length: int
) -> list[dict[str, Any]]:
    """Dense buckets from `since` to `last` summed over partitions; a partition's members are
    carried forward from its latest bucket (before its first one: that bucket's start count;
    with none: its member count now)."""
    starts = range(since, last + 1, length)
    totals = {s: [0, 0, 0] for s in starts}
    for part in parts:
        own = {b[0]: b for b in part["buckets"]}
        ordered = sorted(own)
        if ordered:
            first = own[ordered[0]]
            carried = first[3] - first[1] + first[2]
        else:
            carried = part["members"]
        for start in ordered:
            if start < since:
                carried = own[start][3]
        for start in starts:
            bucket = own.get(start)
            if bucket is not None:
                totals[start][0] += bucket[1]
                totals[start][1] += bucket[2]
                carried = bucket[3]
            totals[start][2] += carried
    return [
        {"start": format_instant(s), "entered": t[0], "left": t[1], "members": t[2]}
        for s, t in totals.items()
    ]
