"""Who may call an endpoint: Host allow-list, bearer tokens, Origin and Content-Type of writes.

Checked in this order for every /api/... and /internal/... request (the probes, /metrics and
the Audience page's files are served before the API and need none of it):

1. `Host` must be an allowed name (DNS rebinding: a page on another site that resolves its
   name to this worker must not reach the API) -> 421 `host_not_allowed`.
2. The bearer token of the endpoint's access level, when a token is configured -> 401
   `unauthorized` (403 `forbidden` for the read-only token on a write).
3. A write (POST, PUT, DELETE) from a browser must come from this origin or an allowed one
   -> 403 `origin_not_allowed`; POST and PUT bodies must be `application/json` -> 415
   `unsupported_media_type`. With both, a cross-site form or `text/plain` fetch cannot
   write even when no token is configured (CSRF).
"""

from __future__ import annotations

import contextlib
import enum
import hmac
import socket
from functools import cache
from urllib.parse import urlsplit

from aiohttp import web

from segstream.api.errors import ApiError
from segstream.app.settings import WorkerSettings, is_loopback

__all__ = ["Access", "allowed_hosts", "check_request", "host_allowed", "host_name"]

_WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})  # noqa: S104 - names, not a bind
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_UNSAFE = frozenset({"POST", "PUT", "DELETE", "PATCH"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class Access(enum.Enum):
    """What a route needs once a token is configured."""

    #: The JSON 404/405 and CORS preflights: nothing to protect.
    OPEN = "open"
    #: Reads (GET /api/..., preview): the API token or the read-only token.
    READ = "read"
    #: Writes of definitions: the API token.
    WRITE = "write"
    #: /internal/...: the peer token only (never a client's token).
    PEER = "peer"


def host_name(host: str) -> str:
    """The name part of a Host header value (no port, no brackets), lower case."""
    text = host.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    if text.count(":") == 1:
        text = text.partition(":")[0]
    return text.rstrip(".")


@cache
def _machine_names() -> tuple[str, ...]:
    names = {socket.gethostname().lower()}
    with contextlib.suppress(OSError):  # resolver trouble: the plain host name still works
        names.add(socket.getfqdn().lower())
    return tuple(sorted(n for n in names if n))


def allowed_hosts(settings: WorkerSettings) -> tuple[str, ...]:
    """SEGSTREAM_WEB_ALLOWED_HOSTS, else the bound and advertised names (and, on a loopback
    or wildcard bind, localhost; on a wildcard bind, this machine's names)."""
    if settings.web_allowed_hosts:
        # A port written with a name is ignored: the port is the one this worker listens on.
        return tuple(h if h.startswith("*") else host_name(h) for h in settings.web_allowed_hosts)
    names: set[str] = set()
    bound = settings.web_host.strip().lower()
    if bound in _WILDCARDS:
        names.update(_LOOPBACK_NAMES)
        names.update(_machine_names())
    else:
        names.add(host_name(bound) if bound.startswith("[") else bound.rstrip("."))
        if is_loopback(bound):
            names.update(_LOOPBACK_NAMES)
    if settings.web_advertise:
        advertised = urlsplit(settings.web_advertise).hostname
        if advertised:
            names.add(advertised.rstrip("."))
    return tuple(sorted(names))


def host_allowed(host: str | None, patterns: tuple[str, ...]) -> bool:
    """True when the Host header names an allowed host (`*`, `*.suffix` or an exact name)."""
    if not host:
        return False
    name = host_name(host)
    for pattern in patterns:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def _bearer(request: web.Request) -> bytes | None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    return given.strip().encode()


def _matches(given: bytes | None, token: str | None) -> bool:
    return given is not None and token is not None and hmac.compare_digest(given, token.encode())


def _unauthorized(what: str) -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        f"this endpoint needs 'Authorization: Bearer <{what}>'",
        headers={"WWW-Authenticate": 'Bearer realm="segstream"'},
    )


def _check_token(settings: WorkerSettings, request: web.Request, access: Access) -> None:
    if access is Access.OPEN or settings.api_token is None:
        return
    given = _bearer(request)
    if access is Access.PEER:
        if not _matches(given, settings.peer_token):
            raise _unauthorized("peer token")
        return
    if _matches(given, settings.api_token):
        return
    if _matches(given, settings.api_read_token):
        if access is Access.READ:
            return
        raise ApiError(403, "forbidden", "the read-only token cannot change segments")
    raise _unauthorized("token")


def _check_origin(settings: WorkerSettings, request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin is None:
        return  # not a browser, or a same-origin request of an old one
    allowed = settings.api_cors_origins
    if origin in allowed or ("*" in allowed and settings.api_token is not None):
        return
    parts = urlsplit(origin)
    host = request.headers.get("Host", "")
    if parts.scheme in ("http", "https") and parts.netloc and parts.netloc.lower() == host.lower():
        return
    raise ApiError(
        403,
        "origin_not_allowed",
        "writes from another origin are refused (add it to SEGSTREAM_API_CORS_ORIGINS)",
    )


def check_request(
    settings: WorkerSettings, hosts: tuple[str, ...], request: web.Request, access: Access
) -> None:
    """Raise the ApiError that refuses `request`, if any (see the module docstring)."""
    if not host_allowed(request.headers.get("Host"), hosts):
        raise ApiError(
            421,
            "host_not_allowed",
            "this Host is not served here (SEGSTREAM_WEB_ALLOWED_HOSTS)",
        )
    if access is Access.OPEN:
        return
    _check_token(settings, request, access)
    if request.method in _UNSAFE:
        _check_origin(settings, request)
    if request.method in _WITH_BODY and request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "the request body must be 'application/json'")
