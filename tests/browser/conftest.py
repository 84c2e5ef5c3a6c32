"""Browser test fixtures: a worker with generated profiles, headless Chromium, screenshots."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from audience_harness import (
    ARTIFACTS_ENV,
    CHROMIUM,
    CHROMIUM_ARGS,
    NOW,
    PROFILES,
    REPO_ROOT,
    TOKEN,
    Audience,
    WorkerCluster,
    http,
    profile_traits,
)


@pytest.fixture(scope="module")
def audience(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audience]:
    """One worker (token required for writes) with PROFILES generated profiles."""
    tmp = tmp_path_factory.mktemp("browser")
    cluster = WorkerCluster(
        kafka_bootstrap,
        tmp,
        partitions=2,
        SEGSTREAM_API_TOKEN=TOKEN,
        SEGSTREAM_DELIVER_ALLOWED_HOSTS="hooks.example.com",
    )
    asyncio.run(cluster.create_topics())
    try:
        cluster.start("w1")
        url = cluster.wait_ready("w1")
        records = [
            {
                "id": f"p{i:02d}-u0",
                "type": "profile.updated",
                "profile_id": f"p{i:02d}",
                "at": NOW,
                "traits": profile_traits(i),
            }
            for i in range(PROFILES)
        ]
        asyncio.run(cluster.produce(records))
        # Every profile is in the store once a preview of an always-true draft counts them all.
        draft = {"id": "probe", "name": "probe", "condition": {"trait": "age", "op": "exists"}}
        deadline = time.monotonic() + 60
        while True:
            status, body = http("POST", f"{url}/api/segments/preview", draft)
            if status == 200 and body["matching"] == PROFILES:
                break
            assert time.monotonic() < deadline, f"profiles not loaded: {status} {body}"
            time.sleep(0.3)
        yield Audience(url, cluster)
    finally:
        cluster.stop_all()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go: $SEGSTREAM_BROWSER_ARTIFACTS or artifacts/browser/."""
    folder = Path(os.environ.get(ARTIFACTS_ENV) or REPO_ROOT / "artifacts" / "browser")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(audience: Audience) -> Iterator[Any]:
    """Debian's Chromium, headless (started after the worker: Playwright owns an event loop)."""
    # In CI the set-up installs both: a missing browser there is a failure, not a skip.
    if os.environ.get("CI"):
        import playwright.sync_api as playwright_sync

        assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: deploy/tools/ensure-chromium.sh"
    else:
        playwright_sync = pytest.importorskip("playwright.sync_api")
        if not Path(CHROMIUM).is_file():
            pytest.skip(f"{CHROMIUM} is missing: run deploy/tools/ensure-chromium.sh")
    with playwright_sync.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, audience: Audience) -> Iterator[Any]:
    """A fresh tab at 1366x768 on the Audience page; fails the test on any script error."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(audience.url + "/")
    try:
        yield tab
    finally:
        context.close()
    assert errors == [], errors


@pytest.fixture
def shot(page: Any, artifacts: Path, request: pytest.FixtureRequest) -> Callable[[str], None]:
    """shot("01-name") writes a screenshot of the page as <test name>-01-name.png."""
    test = request.node.name.removeprefix("test_")

    def take(step: str) -> None:
        page.screenshot(path=str(artifacts / f"{test}-{step}.png"), full_page=True)

    return take
