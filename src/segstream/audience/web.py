"""Routes that serve the Audience page: `/` (index.html) and its assets under `/ui/`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from aiohttp import web

__all__ = ["audience_routes", "static_dir"]

_TYPES: Final[Mapping[str, str]] = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
# Everything the page needs comes from this worker; no inline script or style is used.
_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def static_dir() -> Path:
    """The folder of the page's files (package data, installed with the package)."""
    return Path(__file__).resolve().parent / "static"


class _StaticFiles:
    """Answers for the files of one folder, read once; any other name is a 404."""

    def __init__(self, folder: Path) -> None:
        self._files: dict[str, tuple[bytes, str]] = {
            path.name: (path.read_bytes(), _TYPES[path.suffix])
            for path in sorted(folder.iterdir())
            if path.is_file() and path.suffix in _TYPES
        }

    def response(self, name: str) -> web.Response:
        found = self._files.get(name)
        if found is None:
            raise web.HTTPNotFound(text=f"no file {name!r} here")
        body, content_type = found
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=_HEADERS)

    async def index(self, request: web.Request) -> web.Response:
        return self.response("index.html")

    async def asset(self, request: web.Request) -> web.Response:
        return self.response(request.match_info["name"])


def audience_routes(folder: Path | None = None) -> list[web.RouteDef]:
    """GET `/` and `/ui/{name}`; mount them before the API's catch-all route."""
    files = _StaticFiles(folder or static_dir())
    return [
        web.get("/", files.index),
        web.get("/ui/{name}", files.asset),
    ]
