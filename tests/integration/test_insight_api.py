"""Insight endpoints on two real workers: explain (and drafts), leaves_at checked against the
worker's own timer transition, timeline, size history and overlap; profiles on both."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from test_api import http, wait_for
from worker_harness import WorkerCluster

from segstream.api.cluster import partition_for
from segstream.timefmt import SECOND, format_instant, parse_datetime

pytestmark = pytest.mark.kafka

TOKEN, READ_TOKEN = "insight-admin-token", "insight-read-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
PROFILES = 40
#: The window of the "recent" segment: short, so that the test sees the timer fire.
WINDOW_S = 12


def profile_url(url: str, pid: str, tail: str = "") -> str:
    return f"{url}/api/profiles/{quote(pid, safe='')}{tail}"


class Insight:
    def __init__(self, cluster: WorkerCluster, urls: list[str], bought_at: int) -> None:
        self.cluster = cluster
        self.urls = urls
        self.bought_at = bought_at


def _ready(url: str, segment_id: str, members: int) -> bool:
    status, row = http("GET", f"{url}/api/segments/{segment_id}", headers=AUTH)
    return status == 200 and row["status"] == "ready" and row["members"] == members


@pytest.fixture(scope="module")
def insight(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Insight]:
    tmp: Path = tmp_path_factory.mktemp("insight")
    cluster = WorkerCluster(
        kafka_bootstrap,
        tmp,
        partitions=2,
        SEGSTREAM_API_TOKEN=TOKEN,
        SEGSTREAM_API_READ_TOKEN=READ_TOKEN,
    )
    asyncio.run(cluster.create_topics())
    try:
        cluster.start("w1")
        cluster.start("w2")
        urls = [cluster.wait_ready("w1"), cluster.wait_ready("w2")]
        for definition in (
            {
                "id": "high",
                "name": "High",
                "condition": {"trait": "custom.score", "op": "gte", "value": 5},
            },
            {
                "id": "big",
                "name": "Big spenders",
                "condition": {"event": "order.purchased", "sum": "amount", "op": "gt", "value": 10},
            },
        ):
            status, body = http("POST", f"{urls[0]}/api/segments", definition, AUTH)
            assert status == 201, body
        now = time.time_ns() // 1000
        records: list[dict[str, Any]] = []
        for i in range(PROFILES):
            pid = f"q{i:02d}"
            at = format_instant(now - 60 * SECOND)
            records.append(
                {
                    "id": f"{pid}-u",
                    "type": "profile.updated",
                    "profile_id": pid,
                    "at": at,
                    "traits": {"custom": {"score": i % 10}, "gender": "female"},
                }
            )
            records.append(
                {
                    "id": f"{pid}-v",
                    "type": "page.viewed",
                    "profile_id": pid,
                    "at": at,
                    "properties": {},
                }
            )
        # Two purchases whose amounts add up beyond 64 bits (each fits).
        records.extend(
            {
                "id": f"q01-o{n}",
                "type": "order.purchased",
                "profile_id": "q01",
                "at": format_instant(now - 60 * SECOND),
                "properties": {"amount": 2**62 + 2**61},
            }
            for n in range(2)
        )
        asyncio.run(cluster.produce(records))
        wait_for(lambda: _ready(urls[0], "high", PROFILES // 2), 90, "high ready")
        wait_for(lambda: _ready(urls[0], "big", 1), 90, "big ready")
        # A time-dependent pair: q02 buys now; 'recent' holds for WINDOW_S seconds after it.
        for definition in (
            {
                "id": "recent",
                "name": "Bought just now",
                "condition": {"event": "order.purchased", "within": f"{WINDOW_S}s"},
            },
            {
                "id": "quiet",
                "name": "High but quiet",
                "condition": {"and": [{"segment": "high"}, {"not": {"segment": "recent"}}]},
            },
        ):
            status, body = http("POST", f"{urls[0]}/api/segments", definition, AUTH)
            assert status == 201, body
        wait_for(lambda: _ready(urls[0], "quiet", PROFILES // 2), 90, "quiet ready")
        bought_at = time.time_ns() // 1000
        asyncio.run(
            cluster.produce(
                [
                    {
                        "id": "q05-o1",
                        "type": "order.purchased",
                        "profile_id": "q05",
                        "at": format_instant(bought_at),
                        "properties": {"amount": 3},
                    }
                ]
            )
        )
        yield Insight(cluster, urls, bought_at)
    finally:
        cluster.stop_all()


def _explain(url: str, pid: str, segment: str, headers: dict[str, str] = READ) -> dict[str, Any]:
    status, body = http(
        "GET", profile_url(url, pid, f"/explain?segment={segment}"), headers=headers
    )
    assert status == 200, body
    return body["segment"]  # type: ignore[no-any-return]


def test_explain_from_both_workers_with_values_and_wide_sums(insight: Insight) -> None:
    pids = ["q01", "q02", "q07"]
    assert {partition_for(pid, 2) for pid in pids} == {0, 1}
    for pid in pids:
        answers = [_explain(url, pid, "high") for url in insight.urls]
        assert answers[0]["condition"] == answers[1]["condition"]
        one = answers[0]
        score = int(pid[1:]) % 10
        assert one["truth"] == one["member"] == (score >= 5)
        assert one["agreement"] == "current"
        leaf = one["condition"]
        assert (leaf["kind"], leaf["trait"], leaf["values"]) == ("trait", "custom.score", [score])
        assert one["leaves_at"] is None and one["time"]["change"] is None
    big = _explain(insight.urls[1], "q01", "big")
    assert big["truth"] and big["member"]
    assert big["condition"]["selected"] == 2
    assert big["condition"]["measured"] == str(2 * (2**62 + 2**61))  # beyond 64 bits: a string
    # Every relevant segment at once (the page's profile view).
    status, every = http("GET", profile_url(insight.urls[0], "q07", "/explain"), headers=READ)
    assert status == 200
    assert {s["segment_id"] for s in every["segments"]} == {"high", "quiet"}


def test_leaves_at_is_the_instant_the_worker_emits_the_timer_transition(insight: Insight) -> None:
    def member() -> dict[str, Any] | None:
        found = _explain(insight.urls[0], "q05", "recent")
        return found if found["member"] else None

    recent = wait_for(member, 30, "q05 in recent")
    expected = format_instant(insight.bought_at + WINDOW_S * 1_000_000)
    assert recent["leaves_at"] == expected, recent
    assert recent["condition"]["selected"] == 1
    quiet = _explain(insight.urls[1], "q05", "quiet")
    assert not quiet["member"] and quiet["enters_at"] == expected  # score 5: high, not quiet

    def left() -> list[dict[str, Any]] | None:
        status, body = http("GET", profile_url(insight.urls[1], "q05", "/timeline"), headers=READ)
        assert status == 200, body
        timer = [t for t in body["transitions"] if t["cause"] == {"kind": "timer"}]
        return timer if len(timer) == 2 else None

    timer = wait_for(left, WINDOW_S + 30, "the timer transitions of q05")
    assert {(t["segment_id"], t["type"], t["at"]) for t in timer} == {
        ("recent", "segment.left", expected),
        ("quiet", "segment.entered", expected),
    }
    after = _explain(insight.urls[0], "q05", "recent")
    assert (after["member"], after["truth"], after["leaves_at"]) == (False, False, None)


def test_explain_a_draft_and_its_errors(insight: Insight) -> None:
    draft = {
        "id": "draft",
        "name": "Draft",
        "condition": {
            "and": [
                {"trait": "custom.score", "op": "gte", "value": 8},
                {"event": "page.viewed", "within": "7d"},
            ]
        },
    }
    for url in insight.urls:
        status, body = http("POST", profile_url(url, "q08", "/explain"), draft, READ)
        assert status == 200, body
        one = body["segment"]
        assert (one["draft"], one["truth"], one["member"], one["agreement"]) == (
            True,
            True,
            False,
            "draft",
        )
        assert [c["truth"] for c in one["condition"]["children"]] == [True, True]
        assert one["condition"]["children"][1]["selected"] == 1
        assert one["leaves_at"] is not None  # the page view leaves the 7-day window
    bad = {**draft, "condition": {"and": [{"trait": "custom.score", "op": "gte", "value": "x"}]}}
    status, body = http("POST", profile_url(insight.urls[1], "q08", "/explain"), bad, READ)
    assert (status, body["code"]) == (422, "invalid_definition")
    assert body["errors"][0]["path"].startswith("condition.and[0]")


def test_timeline_history_and_overlap(insight: Insight) -> None:
    status, body = http("GET", profile_url(insight.urls[1], "q06", "/timeline"), headers=READ)
    assert status == 200
    assert [(t["segment_id"], t["type"]) for t in body["transitions"]] == [
        ("quiet", "segment.entered"),
        ("high", "segment.entered"),
    ]
    assert body["transitions"][1]["cause"]["kind"] == "event"
    assert body["transitions"][0]["cause"] == {"kind": "segment_created"}
    for resolution in ("hour", "minute"):
        status, history = http(
            "GET",
            f"{insight.urls[0]}/api/segments/high/history?resolution={resolution}",
            headers=READ,
        )
        assert status == 200, history
        assert history["members"] == PROFILES // 2
        assert history["buckets"][-1]["members"] == PROFILES // 2
        assert sum(b["entered"] for b in history["buckets"]) == PROFILES // 2
        assert parse_datetime(history["buckets"][-1]["start"]) <= time.time_ns() // 1000
    status, overlap = http(
        "POST", f"{insight.urls[1]}/api/segments/overlap", {"segments": ["high", "big"]}, READ
    )
    assert status == 200, overlap
    assert overlap["segments"] == [{"id": "high", "members": 20}, {"id": "big", "members": 1}]
    assert overlap["pairs"][0]["both"] == 0 and overlap["pairs"][0]["only_a"] == 20  # q01: 1


def test_insight_needs_a_token_and_names_what_is_missing(insight: Insight) -> None:
    url = insight.urls[0]
    routes = [
        ("GET", profile_url(url, "q01", "/explain?segment=high"), None),
        ("POST", profile_url(url, "q01", "/explain"), {"id": "x", "name": "X", "condition": {}}),
        ("GET", profile_url(url, "q01", "/timeline"), None),
        ("GET", f"{url}/api/segments/high/history", None),
        ("POST", f"{url}/api/segments/overlap", {"segments": ["high", "big"]}),
    ]
    for method, target, body in routes:
        status, answer = http(method, target, body, headers={})
        assert (status, answer["code"]) == (401, "unauthorized"), target
    for target, code in (
        (profile_url(url, "nobody", "/explain?segment=high"), "profile_not_found"),
        (profile_url(url, "q01", "/explain?segment=nothing"), "segment_not_found"),
        (profile_url(url, "nobody", "/timeline"), "profile_not_found"),
        (f"{url}/api/segments/nothing/history", "segment_not_found"),
    ):
        status, answer = http("GET", target, headers=READ)
        assert (status, answer["code"]) == (404, code), target
    status, answer = http("GET", f"{url}/api/segments/high/history?resolution=week", headers=READ)
    assert (status, answer["code"]) == (422, "invalid_parameter")
    status, answer = http(
        "POST", f"{url}/api/segments/overlap", {"segments": ["high", "nope"]}, READ
    )
    assert status == 422 and answer["errors"][0]["path"] == "segments[1]"
