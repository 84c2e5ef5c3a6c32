"""/api/destinations: list, create, read, replace and delete webhook destinations.

Every destination endpoint needs the API token when one is set, reads included: a
destination's URL is the operator's business. Secrets are references and never echoed.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from segstream.api.context import ApiContext
from segstream.api.errors import ApiError, invalid, not_found
from segstream.api.http import read_json
from segstream.app.destination_writer import (
    DestinationApplied,
    DestinationExists,
    DestinationReader,
    DestinationWriter,
    UnknownDestination,
    public_view,
)
from segstream.app.outbound import OutboundPolicy
from segstream.errors import Problem

__all__ = ["DestinationHandlers"]

_STATUS = {"created": 201}


class DestinationHandlers:
    """Handlers of the destination endpoints."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.policy = OutboundPolicy.from_env()
        self.reader = DestinationReader(ctx.settings)

    def _writer(self) -> DestinationWriter:
        return DestinationWriter(self.ctx.settings, self.policy)

    async def list(self, request: web.Request) -> web.Response:
        """GET /api/destinations."""
        records = await self.reader.read()
        rows = [public_view(record) for _, record in sorted(records.items())]
        return web.json_response({"destinations": rows})

    async def get(self, request: web.Request) -> web.Response:
        """GET /api/destinations/{id}."""
        destination_id = request.match_info["id"]
        record = (await self.reader.read()).get(destination_id)
        if record is None:
            raise not_found("destination_not_found", f"there is no destination '{destination_id}'")
        return web.json_response(public_view(record))

    async def create(self, request: web.Request) -> web.Response:
        """POST /api/destinations: a new destination (409 when the id is defined)."""
        raw = await read_json(request, self.ctx.settings.api_max_body_bytes)
        try:
            async with self._writer() as writer:
                applied = await writer.create(raw)
        except DestinationExists as exc:
            raise ApiError(
                409, "destination_exists", f"destination '{exc}' exists; use PUT to change it"
            ) from None
        return self._written(applied)

    async def replace(self, request: web.Request) -> web.Response:
        """PUT /api/destinations/{id}: create or replace."""
        destination_id = request.match_info["id"]
        raw = await read_json(request, self.ctx.settings.api_max_body_bytes)
        if isinstance(raw, dict):
            if "id" not in raw:
                raw = {"id": destination_id, **raw}
            elif raw["id"] != destination_id:
                raise invalid(
                    "invalid_destination",
                    [Problem("id", f"the id must be the one in the URL, '{destination_id}'")],
                )
        async with self._writer() as writer:
            (applied,) = await writer.apply([raw])
        return self._written(applied)

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE /api/destinations/{id}: write the deletion marker."""
        destination_id = request.match_info["id"]
        try:
            async with self._writer() as writer:
                version = await writer.delete(destination_id)
        except UnknownDestination:
            raise not_found(
                "destination_not_found", f"there is no destination '{destination_id}'"
            ) from None
        marker = {"id": destination_id, "deleted": True, "version": version}
        self.reader.note_written(marker)
        return web.json_response(marker)

    def _written(self, applied: DestinationApplied) -> web.Response:
        if applied.outcome == "rejected" or applied.record is None:
            raise invalid("invalid_destination", applied.problems)
        self.reader.note_written(applied.record)
        body: dict[str, Any] = {**public_view(applied.record), "outcome": applied.outcome}
        return web.json_response(body, status=_STATUS.get(applied.outcome, 200))

    async def close(self) -> None:
        """Stop the reader."""
        await self.reader.close()
