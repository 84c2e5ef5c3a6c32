"""The OpenAPI document of the API (`schemas/openapi.yaml` in the source tree)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

__all__ = ["documented_routes", "load_openapi", "spec_path"]

_ENV = "SEGSTREAM_OPENAPI_FILE"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def spec_path() -> Path | None:
    """Where the document is: $SEGSTREAM_OPENAPI_FILE, else schemas/ of the source tree."""
    configured = os.environ.get(_ENV)
    candidates = [Path(configured)] if configured else []
    candidates.append(Path(__file__).resolve().parents[3] / "schemas" / "openapi.yaml")
    return next((path for path in candidates if path.is_file()), None)


def load_openapi(path: Path | None = None) -> dict[str, Any]:
    """The parsed document (needs PyYAML, a development dependency)."""
    yaml = importlib.import_module("yaml")
    found = path or spec_path()
    if found is None:
        raise FileNotFoundError("schemas/openapi.yaml is not available")
    document: dict[str, Any] = yaml.safe_load(found.read_text(encoding="utf-8"))
    return document


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str, bool]]:
    """(METHOD, path, needs the bearer token) of every operation the document describes."""
    found = set()
    default_security = bool(document.get("security"))
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is not None:
                security = operation.get("security", None)
                secured = default_security if security is None else bool(security)
                found.add((method.upper(), path, secured))
    return found
