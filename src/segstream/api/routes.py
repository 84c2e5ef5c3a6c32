"""The API's route table, mounted on the worker's HealthWeb through `extra_routes`."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from segstream.api.access import Access
from segstream.api.cluster import ClusterView
from segstream.api.context import ApiContext
from segstream.api.destinations import DestinationHandlers
from segstream.api.errors import ApiError
from segstream.api.export import ExportHandlers
from segstream.api.http import Handler, cors_headers, endpoint
from segstream.api.insight import InsightHandlers
from segstream.api.internal import InternalHandlers
from segstream.api.local import WorkerView
from segstream.api.openapi import spec_path
from segstream.api.reads import ReadHandlers
from segstream.api.segments import SegmentHandlers
from segstream.app.settings import WorkerSettings

__all__ = ["HttpApi", "Route"]

#: (method, path template as in the OpenAPI document, needs a token when one is set)
Route = tuple[str, str, bool]

_READ, _WRITE, _PEER = Access.READ, Access.WRITE, Access.PEER


class HttpApi:
    """The admin HTTP API of one worker: public /api/... and peer-facing /internal/..."""

    def __init__(self, worker: WorkerView, settings: WorkerSettings) -> None:
        self.ctx = ApiContext(worker, ClusterView(settings), settings)
        segments = SegmentHandlers(self.ctx)
        reads = ReadHandlers(self.ctx)
        internal = InternalHandlers(self.ctx)
        destinations = self._destinations = DestinationHandlers(self.ctx)
        export = ExportHandlers(self.ctx)
        insight = InsightHandlers(self.ctx)
        # (method, aiohttp path, OpenAPI path, handler, access). With a token configured,
        # every route needs one: profiles and members are personal data, and a preview costs
        # a pass over every profile.
        self._table: list[tuple[str, str, str, Handler, Access]] = [
            ("GET", "/api/segments", "/api/segments", segments.list, _READ),
            ("POST", "/api/segments", "/api/segments", segments.create, _WRITE),
            ("POST", "/api/segments/preview", "/api/segments/preview", segments.preview, _READ),
            ("GET", "/api/segments/{id}", "/api/segments/{id}", segments.get, _READ),
            ("PUT", "/api/segments/{id}", "/api/segments/{id}", segments.replace, _WRITE),
            ("DELETE", "/api/segments/{id}", "/api/segments/{id}", segments.delete, _WRITE),
            (
                "GET",
                "/api/segments/{id}/members",
                "/api/segments/{id}/members",
                reads.members,
                _READ,
            ),
            *_export_routes(export),
            *_insight_routes(insight),
            (
                "GET",
                "/api/profiles/{profile_id:(?s:.+)}",
                "/api/profiles/{id}",
                reads.profile,
                _READ,
            ),
            ("GET", "/api/destinations", "/api/destinations", destinations.list, _READ),
            ("POST", "/api/destinations", "/api/destinations", destinations.create, _WRITE),
            ("GET", "/api/destinations/{id}", "/api/destinations/{id}", destinations.get, _READ),
            (
                "PUT",
                "/api/destinations/{id}",
                "/api/destinations/{id}",
                destinations.replace,
                _WRITE,
            ),
            (
                "DELETE",
                "/api/destinations/{id}",
                "/api/destinations/{id}",
                destinations.delete,
                _WRITE,
            ),
            ("GET", "/api/openapi.yaml", "/api/openapi.yaml", self._openapi, _READ),
            (
                "GET",
                "/internal/partitions/{partition}/segments/{id}/members",
                "",
                internal.members,
                _PEER,
            ),
            (
                "GET",
                "/internal/partitions/{partition}/profiles/{profile_id:(?s:.+)}",
                "",
                internal.profile,
                _PEER,
            ),
            ("POST", "/internal/preview", "", internal.preview, _PEER),
            ("POST", "/internal/insight", "", insight.internal, _PEER),
        ]

    def set_url(self, url: str) -> None:
        """This worker's URL as peers reach it (never forward to ourselves)."""
        self.ctx.self_url = url

    def public_routes(self) -> list[Route]:
        """(method, OpenAPI path, auth) of every public endpoint: what the OpenAPI documents."""
        return [(m, doc, access is not Access.OPEN) for m, _, doc, _, access in self._table if doc]

    def routes(self) -> list[web.RouteDef]:
        """aiohttp route definitions, with JSON 404/405 (and CORS preflight) for any other path."""
        defs = [
            web.route(method, path, endpoint(self.ctx, handler, access))
            for method, path, _, handler, access in self._table
        ]
        fallback = endpoint(self.ctx, self._fallback, Access.OPEN)
        # Last: anything no route took (the probes come first) gets a JSON 404 or 405.
        defs.append(web.route("*", "/{tail:(?s:.*)}", fallback))
        return defs

    async def close(self) -> None:
        """Stop the cluster view's and the destinations' consumers."""
        await self.ctx.view.close()
        await self._destinations.close()

    async def _fallback(self, request: web.Request) -> web.StreamResponse:
        matching = [
            (m, path) for m, path, _, _, _ in self._table if _pattern(path).fullmatch(request.path)
        ]
        # A literal path (/api/segments/preview) wins over a template it also fits.
        literal = [(m, path) for m, path in matching if "{" not in path]
        allowed = sorted({m for m, _ in literal or matching})
        if not allowed:
            raise ApiError(404, "not_found", f"no endpoint at {request.path}")
        if request.method == "OPTIONS" and cors_headers(self.ctx, request):
            return web.Response(status=204)
        allow = ", ".join(allowed)
        raise ApiError(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed here; use {allow}",
            headers={"Allow": allow},
        )

    async def _openapi(self, request: web.Request) -> web.StreamResponse:
        path = spec_path()
        if path is None:
            raise ApiError(404, "not_found", "the OpenAPI document is not installed here")
        return web.Response(body=Path(path).read_bytes(), content_type="application/yaml")


def _export_routes(export: ExportHandlers) -> list[tuple[str, str, str, Handler, Access]]:
    """Member exports (api/export.py): every member of a segment, streamed."""
    csv_path = "/api/segments/{id}/members.csv"
    jsonl_path = "/api/segments/{id}/members.jsonl"
    page_path = "/internal/partitions/{partition}/segments/{id}/export"
    return [
        ("GET", csv_path, csv_path, export.csv, _READ),
        ("GET", jsonl_path, jsonl_path, export.jsonl, _READ),
        ("GET", page_path, "", export.page, _PEER),
    ]


def _insight_routes(insight: InsightHandlers) -> list[tuple[str, str, str, Handler, Access]]:
    """Insight routes (personal data: the read token). Before `/api/profiles/{id}`, whose
    pattern would take `.../explain` as part of an id."""
    explain = "/api/profiles/{profile_id:(?s:.+)}/explain"
    return [
        ("GET", explain, "/api/profiles/{id}/explain", insight.explain, _READ),
        ("POST", explain, "/api/profiles/{id}/explain", insight.explain_draft, _READ),
        (
            "GET",
            "/api/profiles/{profile_id:(?s:.+)}/timeline",
            "/api/profiles/{id}/timeline",
            insight.timeline,
            _READ,
        ),
        ("GET", "/api/segments/{id}/history", "/api/segments/{id}/history", insight.history, _READ),
        ("POST", "/api/segments/overlap", "/api/segments/overlap", insight.overlap, _READ),
    ]


def _pattern(path: str) -> re.Pattern[str]:
    """A regex for an aiohttp path template (`{name}` or `{name:regex}`)."""
    parts: list[str] = []
    position = 0
    for match in re.finditer(r"\{(\w+)(?::([^}]+))?\}", path):
        parts.append(re.escape(path[position : match.start()]))
        parts.append(f"(?:{match.group(2)})" if match.group(2) else "[^/]+")
        position = match.end()
    parts.append(re.escape(path[position:]))
    return re.compile("".join(parts))
