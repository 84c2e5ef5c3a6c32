"""API errors: every failure is a JSON body with a stable `code` (and `errors` for 422)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from segstream.errors import Problem

__all__ = ["ApiError", "error_body", "invalid", "not_found"]


class ApiError(Exception):
    """An HTTP error answer: status, stable code, message and optional field errors."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: Iterable[Problem] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = list(errors)
        self.headers = headers or {}

    def response(self) -> web.Response:
        """The error as a JSON response."""
        return web.json_response(
            error_body(self.code, self.message, self.errors),
            status=self.status,
            headers=self.headers,
        )


def error_body(code: str, message: str, errors: Iterable[Problem] = ()) -> dict[str, Any]:
    """`{"code", "message"}` plus `errors` (JSON path and message each) when there are any."""
    body: dict[str, Any] = {"code": code, "message": message}
    found = [{"path": p.path, "message": p.message} for p in errors]
    if found:
        body["errors"] = found
    return body


def invalid(code: str, problems: Iterable[Problem], message: str | None = None) -> ApiError:
    """A 422 validation failure."""
    found = list(problems)
    text = message or "; ".join(str(p) for p in found) or "invalid request"
    return ApiError(422, code, text, found)


def not_found(code: str, message: str) -> ApiError:
    """A 404."""
    return ApiError(404, code, message)
