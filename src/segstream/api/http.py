"""The HTTP shell of every endpoint: access checks, JSON errors, CORS and bounded bodies."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from segstream.api.access import Access, allowed_hosts, check_request
from segstream.api.context import ApiContext
from segstream.api.errors import ApiError
from segstream.errors import Problem, SegstreamError
from segstream.schemas.jsontext import loads_exact

__all__ = ["Handler", "cors_headers", "endpoint", "read_json"]

log = logging.getLogger("segstream.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_ALLOW_HEADERS = "Authorization, Content-Type"


def cors_headers(ctx: ApiContext, request: web.Request) -> dict[str, str]:
    """CORS headers for an allowed Origin (none when CORS is off, the default)."""
    origin = request.headers.get("Origin")
    allowed = ctx.settings.api_cors_origins
    if origin is None or not allowed or (origin not in allowed and "*" not in allowed):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": _ALLOW_HEADERS,
        "Vary": "Origin",
    }


def endpoint(ctx: ApiContext, handler: Handler, access: Access) -> Handler:
    """Wrap a handler: Host, token, Origin and Content-Type checks (access.py), every failure
    as JSON with a stable code, CORS headers."""
    hosts = allowed_hosts(ctx.settings)

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            check_request(ctx.settings, hosts, request, access)
            response = await handler(request)
        except ApiError as exc:
            response = exc.response()
        except SegstreamError as exc:
            # The message may name brokers or topics: the log has it, the client does not.
            log.warning("%s %s: %s", request.method, request.path, exc)
            response = ApiError(
                503, "backend_unavailable", "the backend is unavailable now; retry"
            ).response()
        except Exception as exc:
            response = _unexpected(request, exc)
        response.headers.update(cors_headers(ctx, request))
        return response

    return wrapped


def _unexpected(request: web.Request, exc: Exception) -> web.Response:
    from aiokafka.errors import KafkaError

    if isinstance(exc, KafkaError):
        log.warning("%s %s: Kafka: %s", request.method, request.path, exc)
        return ApiError(
            503, "kafka_unavailable", "Kafka is unavailable now; retry (see the worker's log)"
        ).response()
    log.exception("%s %s failed", request.method, request.path)
    return ApiError(500, "internal", "internal error (see the worker's log)").response()


async def read_json(request: web.Request, limit: int) -> object:
    """The request body as JSON: 413 beyond `limit` bytes, 400 when it is not JSON."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    body = bytearray()
    while chunk := await request.content.read(64 * 1024):
        body.extend(chunk)
        if len(body) > limit:
            raise _too_large(limit)
    try:
        return loads_exact(bytes(body))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the request body is over {limit} bytes")


def problem(path: str, message: str) -> Problem:
    """Shorthand for a Problem."""
    return Problem(path, message)
