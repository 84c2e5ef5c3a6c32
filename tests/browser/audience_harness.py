"""Shared by the browser tests: the generated profiles, API calls, the worker under test."""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from worker_harness import WorkerCluster

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SEGSTREAM_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS_ENV = "SEGSTREAM_BROWSER_ARTIFACTS"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
]
TOKEN = "browser-token-1"
PROFILES = 60
NOW = "2026-01-01T00:00:00Z"
COUNTRIES = ("US", "US", "CA", "BR", "BR")  # by i % 5


def profile_traits(i: int) -> dict[str, Any]:
    """The traits of profile `p{i:02d}` (the tests compute expected members from these)."""
    return {
        "gender": "female" if i % 2 == 0 else "male",
        "age": 18 + i,
        "location": {"country": COUNTRIES[i % 5], "city": f"City {i % 4}"},
        "device": {"type": ("mobile", "desktop", "tablet")[i % 3]},
    }


def http(method: str, url: str, body: Any = None, token: str | None = TOKEN) -> tuple[int, Any]:
    """(status, decoded JSON) of an API call; errors are answers too."""
    data = None if body is None else orjson.dumps(body)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


@dataclass
class Audience:
    """The worker under test and where its page is."""

    url: str
    cluster: WorkerCluster

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http(method, f"{self.url}{path}", body)

    def create(self, definition: dict[str, Any]) -> None:
        """Create a segment through the API and wait until it is ready."""
        status, body = self.api("POST", "/api/segments", definition)
        assert status == 201, body
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, row = self.api("GET", f"/api/segments/{definition['id']}")
            if status == 200 and row["status"] == "ready":
                return
            time.sleep(0.2)
        raise AssertionError(f"{definition['id']} never became ready")
