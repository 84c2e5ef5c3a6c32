"""Calls to the peer that owns a partition (its advertised web URL, /internal/... endpoints)."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from segstream.api.context import ApiContext
from segstream.api.errors import ApiError

__all__ = ["call_owner"]

_TIMEOUT = aiohttp.ClientTimeout(total=60, connect=5)


async def call_owner(
    ctx: ApiContext,
    partition: int,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    body: Any = None,
) -> Any:
    """Send an internal request to the owner of `partition`; its JSON answer (errors re-raised)."""
    url = ctx.view.owner_url(partition)
    if url is None or url == ctx.self_url:
        raise ApiError(
            503,
            "partition_unavailable",
            f"no worker serves partition {partition} now; retry",
            headers={"Retry-After": "1"},
        )
    headers = {"Content-Type": "application/json"}
    if ctx.settings.api_token:
        headers["Authorization"] = f"Bearer {ctx.settings.api_token}"
    data = orjson.dumps(body) if body is not None else None
    try:
        async with (
            aiohttp.ClientSession(timeout=_TIMEOUT) as session,
            session.request(
                method, url.rstrip("/") + path, params=params, data=data, headers=headers
            ) as response,
        ):
            payload = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ApiError(
            502, "peer_unavailable", f"the worker at {url} (partition {partition}): {exc}"
        ) from None
    try:
        decoded = orjson.loads(payload)
    except orjson.JSONDecodeError:
        decoded = None
    if status >= 400:
        if isinstance(decoded, dict) and isinstance(decoded.get("code"), str):
            raise ApiError(status, decoded["code"], str(decoded.get("message", "")))
        raise ApiError(502, "peer_unavailable", f"the worker at {url} answered {status}")
    return decoded
