"""Calls to the peer that owns a partition (its advertised web URL, /internal/... endpoints).

The URL comes from a status record, so it is checked first (peers.py); the call carries the
peer token only, follows no redirect and reads a bounded answer. What went wrong is logged;
the client gets a stable code and a message that names the partition, never the peer's
address or the exception.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import orjson

from segstream.api.context import ApiContext
from segstream.api.errors import ApiError
from segstream.api.peers import peer_url_problem

__all__ = ["call_owner"]

log = logging.getLogger("segstream.api")

_TIMEOUT = aiohttp.ClientTimeout(total=60, connect=5)
#: Largest peer answer read (a page of 1,000 members or a profile with 500 events fits).
_MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: Peer errors passed on as they are (the peer's own API errors, which name no internals).
_PASSED_ON = frozenset({400, 404, 409, 413, 422, 429, 503})


def _unavailable(partition: int, why: str) -> ApiError:
    return ApiError(
        502,
        "peer_unavailable",
        f"the worker that owns partition {partition} {why}; retry (see this worker's log)",
    )


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
    problem = peer_url_problem(url, ctx.settings.api_peer_urls, ctx.self_url)
    if problem is not None:
        log.warning("partition %d: not calling the URL its status names: %s", partition, problem)
        raise ApiError(
            502,
            "peer_not_allowed",
            f"the worker named for partition {partition} is not an allowed peer "
            "(see this worker's log)",
        )
    headers = {"Content-Type": "application/json"}
    token = ctx.settings.peer_token
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = orjson.dumps(body) if body is not None else None
    try:
        async with (
            aiohttp.ClientSession(timeout=_TIMEOUT) as session,
            session.request(
                method,
                url.rstrip("/") + path,
                params=params,
                data=data,
                headers=headers,
                allow_redirects=False,
            ) as response,
        ):
            status = response.status
            retry_after = response.headers.get("Retry-After", "")
            payload = await _bounded(response)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("partition %d: peer call failed: %s: %s", partition, type(exc).__name__, exc)
        raise _unavailable(partition, "did not answer") from None
    try:
        decoded = orjson.loads(payload)
    except orjson.JSONDecodeError:
        if status < 300:
            log.warning("partition %d: the peer's answer is not JSON", partition)
            raise _unavailable(partition, "answered something that is not JSON") from None
        decoded = None
    if status < 300:
        return decoded
    if status == 401:
        log.warning("partition %d: the peer refused this worker's peer token", partition)
        raise _unavailable(partition, "refused this worker's peer token")
    if status in _PASSED_ON and isinstance(decoded, dict) and isinstance(decoded.get("code"), str):
        extra = {"Retry-After": retry_after} if retry_after.isdigit() else {}
        raise ApiError(status, decoded["code"], str(decoded.get("message", "")), headers=extra)
    log.warning("partition %d: the peer answered HTTP %d", partition, status)
    raise _unavailable(partition, f"answered HTTP {status}")


async def _bounded(response: aiohttp.ClientResponse) -> bytes:
    body = bytearray()
    while chunk := await response.content.read(256 * 1024):
        body.extend(chunk)
        if len(body) > _MAX_ANSWER_BYTES:
            raise ValueError(f"the answer is over {_MAX_ANSWER_BYTES} bytes")
    return bytes(body)
