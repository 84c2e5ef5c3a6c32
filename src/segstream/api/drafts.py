"""A draft definition in a request body (preview, explain): read, limited, validated."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from segstream.api.context import ApiContext
from segstream.api.errors import invalid
from segstream.api.http import read_json
from segstream.api.limits import definition_limits
from segstream.rules import validate_definition

__all__ = ["read_definition", "read_draft"]


async def read_definition(request: web.Request, ctx: ApiContext) -> object:
    """The request's JSON body within the definition limits (422 `definition_too_large`)."""
    raw = await read_json(request, ctx.settings.api_max_body_bytes)
    problems = definition_limits(raw)
    if problems:
        raise invalid("definition_too_large", problems)
    return raw


async def read_draft(request: web.Request, ctx: ApiContext) -> dict[str, Any]:
    """A definition checked against the segments known now (422 `invalid_definition` with the
    JSON paths), cut to the fields evaluation uses."""
    raw = await read_definition(request, ctx)
    view = ctx.view
    await view.refresh()
    problems = validate_definition(
        raw, view.definitions, history_retention=ctx.settings.history_retention
    )
    if problems:
        raise invalid("invalid_definition", problems)
    assert isinstance(raw, dict)
    return {k: raw[k] for k in ("id", "name", "description", "condition") if k in raw}
