"""Who may use the API of real workers: tokens on reads, CSRF, Host, peers, previews, secrets.

Each test is one finding of issue #18, probed as it was found: over HTTP against the web
servers of two real `segstream worker` processes that share a real broker.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.server
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from worker_harness import WorkerCluster

from segstream.api.cluster import partition_for

pytestmark = pytest.mark.kafka

TOKEN, READ_TOKEN = "sec-admin-token-1", "sec-read-token-2"
PEER_TOKEN = hmac.new(TOKEN.encode(), b"segstream peer v1", hashlib.sha256).hexdigest()
PROFILES = 40
NOW = "2026-01-01T00:00:00Z"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    """(status, JSON body, headers); JSON bodies go as application/json unless told."""
    data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
    sent = dict(headers or {})
    if data is not None:
        sent.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw, answer = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, answer = error.code, error.read(), error.headers
    return status, orjson.loads(raw) if raw else None, answer


def livez_seconds(url: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(f"{url}/livez", timeout=10) as response:
        assert response.status == 200
    return time.monotonic() - started


class Cluster:
    def __init__(self, workers: WorkerCluster, urls: list[str]) -> None:
        self.workers = workers
        self.urls = urls

    def owned(self, name: str) -> set[int]:
        found: set[int] = set()
        for number, action in re.findall(
            r"partition (\d+) (assigned|revoked)", self.workers.log(name)
        ):
            (found.add if action == "assigned" else found.discard)(int(number))
        return found


@pytest.fixture(scope="module")
def cluster(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp: Path = tmp_path_factory.mktemp("api-security")
    workers = WorkerCluster(
        kafka_bootstrap,
        tmp,
        partitions=2,
        SEGSTREAM_API_TOKEN=TOKEN,
        SEGSTREAM_API_READ_TOKEN=READ_TOKEN,
    )
    asyncio.run(workers.create_topics())
    try:
        workers.start("w1")
        workers.start("w2")
        urls = [workers.wait_ready("w1"), workers.wait_ready("w2")]
        records = [
            {
                "id": f"p{i:02d}-u",
                "type": "profile.updated",
                "profile_id": f"p{i:02d}",
                "at": NOW,
                "traits": {"email": f"p{i:02d}@example.com", "score": i % 4},
            }
            for i in range(PROFILES)
        ]
        asyncio.run(workers.produce(records))
        status, body, _ = call(
            "POST",
            f"{urls[0]}/api/segments",
            {
                "id": "base",
                "name": "Base",
                "condition": {"trait": "score", "op": "gte", "value": 2},
            },
            bearer(TOKEN),
        )
        assert status == 201, body
        result = Cluster(workers, urls)

        def ready() -> bool:
            status, row, _ = call("GET", f"{urls[0]}/api/segments/base", None, bearer(TOKEN))
            return status == 200 and (row["status"], row["members"]) == ("ready", PROFILES // 2)

        deadline = time.monotonic() + 90
        while not ready():
            assert time.monotonic() < deadline, "segment base never became ready"
            time.sleep(0.3)
        assert result.owned("w1") and result.owned("w2"), "each worker owns a partition"
        yield result
    finally:
        workers.stop_all()


def test_reads_of_personal_data_need_a_token(cluster: Cluster) -> None:
    w1, w2 = cluster.urls
    for url in (w1, w2):
        for path in ("/api/profiles/p01", "/api/segments/base/members", "/api/segments"):
            status, body, _ = call("GET", url + path)
            assert (status, body["code"]) == (401, "unauthorized"), path
            status, body, _ = call("GET", url + path, None, bearer(READ_TOKEN))
            assert status == 200, (path, body)
        status, body, _ = call(
            "POST", f"{url}/api/segments/preview", {"id": "x", "name": "X", "condition": {
                "trait": "score", "op": "eq", "value": 1}}
        )  # fmt: skip
        assert status == 401
    status, body, _ = call("GET", f"{w1}/api/profiles/p01", None, bearer(READ_TOKEN))
    assert body["traits"]["email"] == "p01@example.com"
    # The read-only token cannot write; a client token is no peer token.
    status, body, _ = call("DELETE", f"{w1}/api/segments/base", None, bearer(READ_TOKEN))
    assert (status, body["code"]) == (403, "forbidden")
    for token in (TOKEN, READ_TOKEN):
        status, _, _ = call("GET", f"{w1}/internal/partitions/0/profiles/p01", None, bearer(token))
        assert status == 401


def test_cross_site_writes_and_foreign_hosts_are_refused(cluster: Cluster) -> None:
    w1 = cluster.urls[0]
    evil = {
        "id": "evil",
        "name": "Evil",
        "condition": {"trait": "score", "op": "exists"},
    }
    # What a page on another site can send without a preflight: text/plain, its Origin.
    for headers in (
        {"Content-Type": "text/plain", "Origin": "https://evil.example"},
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/json", "Origin": "https://evil.example"},
    ):
        status, body, _ = call("POST", f"{w1}/api/segments", evil, {**bearer(TOKEN), **headers})
        assert status in (403, 415), (headers, body)
    status, body, _ = call(
        "DELETE", f"{w1}/api/segments/base", None, {**bearer(TOKEN), "Origin": "null"}
    )
    assert (status, body["code"]) == (403, "origin_not_allowed")
    # DNS rebinding: the browser sends the attacker's name as Host.
    port = w1.rsplit(":", 1)[1]
    status, body, _ = call(
        "GET", f"{w1}/api/segments", None, {**bearer(TOKEN), "Host": f"rebind.example:{port}"}
    )
    assert (status, body["code"]) == (421, "host_not_allowed")
    # The page's own origin may write.
    status, body, _ = call("PUT", f"{w1}/api/segments/evil", evil, {**bearer(TOKEN), "Origin": w1})
    assert status == 201, body
    status, body, _ = call("DELETE", f"{w1}/api/segments/evil", None, bearer(TOKEN))
    assert status == 200, body
    # The list reads the segments topic: the deletion shows once its marker is read.
    deadline = time.monotonic() + 15
    while True:
        status, body, _ = call("GET", f"{w1}/api/segments", None, bearer(TOKEN))
        ids = [row["id"] for row in body["segments"]]
        if ids == ["base"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert ids == ["base"]


def test_a_cyclic_internal_preview_is_rejected_and_the_loop_stays_live(cluster: Cluster) -> None:
    w1, w2 = cluster.urls
    status, body, _ = call(
        "PUT",
        f"{w1}/api/segments/loop-b",
        {"name": "B", "condition": {"segment": "base"}},
        bearer(TOKEN),
    )
    assert status == 201, body
    draft = {"id": "base", "name": "Base", "condition": {"segment": "loop-b"}}
    partition = min(cluster.owned("w2"))

    def owner_knows_loop_b() -> bool:
        status, _, _ = call(
            "POST",
            f"{w2}/internal/preview",
            {"definition": draft, "partition": partition, "now": 0, "sample": 0},
            bearer(PEER_TOKEN),
        )
        return status == 422

    with ThreadPoolExecutor(1) as pool:
        deadline = time.monotonic() + 30
        while True:
            attempt = pool.submit(owner_knows_loop_b)
            # The worker keeps answering its probes while the preview is handled.
            assert livez_seconds(w2) < 1.0
            if attempt.result(timeout=30):
                break
            assert time.monotonic() < deadline, "the owner never rejected the cyclic draft"
            time.sleep(0.2)
    status, body, _ = call(
        "POST",
        f"{w2}/internal/preview",
        {"definition": draft, "partition": partition, "now": 0, "sample": 0},
        bearer(PEER_TOKEN),
    )
    assert (status, body["code"]) == (422, "invalid_definition")
    assert body["errors"][0]["path"] == "condition.segment"
    assert livez_seconds(w2) < 1.0
    # The public preview rejects it too, at the same path.
    status, body, _ = call("POST", f"{w1}/api/segments/preview", draft, bearer(READ_TOKEN))
    assert (status, body["errors"][0]["path"]) == (422, "condition.segment"), body
    status, body, _ = call("DELETE", f"{w1}/api/segments/loop-b", None, bearer(TOKEN))
    assert status == 200


def test_a_preview_flood_gets_429_and_the_loop_stays_live(cluster: Cluster) -> None:
    w1 = cluster.urls[0]
    draft = {
        "id": "flood",
        "name": "Flood",
        "condition": {"trait": "score", "op": "gte", "value": 1},
    }
    start = threading.Barrier(24)

    def preview(_: int) -> tuple[int, Any, Any]:
        start.wait()
        return call("POST", f"{w1}/api/segments/preview", draft, bearer(READ_TOKEN))

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(preview, range(24)))
        assert livez_seconds(w1) < 1.0
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 429}, statuses
    assert 200 in statuses and 429 in statuses, statuses
    for status, body, headers in answers:
        if status == 429:
            assert body["code"] == "too_many_previews" and headers["Retry-After"] == "1"
        else:
            assert (body["profiles"], body["matching"]) == (PROFILES, PROFILES * 3 // 4)


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A stand-in peer: records what it is sent and answers with a redirect."""

    seen: list[dict[str, str]] = []  # noqa: RUF012 - shared by the handler instances

    def do_GET(self) -> None:
        self.seen.append({k: v for k, v in self.headers.items()})
        self.send_response(302)
        self.send_header("Location", "http://127.0.0.1:1/stolen")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_forged_peer_urls_get_no_client_token_and_no_internals(cluster: Cluster) -> None:
    w1 = cluster.urls[0]
    remote = min(cluster.owned("w2"))
    pid = next(f"p{i:02d}" for i in range(PROFILES) if partition_for(f"p{i:02d}", 2) == remote)
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    fake = f"http://127.0.0.1:{receiver.server_address[1]}"
    statuses = asyncio.run(cluster.workers.read("status", until_quiet=1.0))
    real = next(orjson.loads(r.value) for r in reversed(statuses) if r.key == str(remote).encode())
    forged = {
        f"{fake}": "peer_unavailable",  # a loopback URL is a peer here: it gets the peer token
        f"http://user:pw@127.0.0.1:{receiver.server_address[1]}": "peer_not_allowed",
        "http://evil.example:6066": "peer_not_allowed",
        f"{fake}/path?x=1": "peer_not_allowed",
    }
    try:
        for web, code in forged.items():
            seen: set[str] = set()
            deadline = time.monotonic() + 30
            while code not in seen:
                assert time.monotonic() < deadline, f"never saw {code} for {web}"
                status_record = {**real, "web": web, "at": "2099-01-01T00:00:00Z"}
                asyncio.run(
                    cluster.workers.produce(
                        [
                            (
                                cluster.workers.topic("status"),
                                str(remote).encode(),
                                orjson.dumps(status_record),
                            )
                        ]
                    )
                )
                status, body, _ = call("GET", f"{w1}/api/profiles/{pid}", None, bearer(TOKEN))
                if status == 200:
                    continue  # the real owner's status came in between
                assert status == 502, body
                assert str(receiver.server_address[1]) not in body["message"]
                assert "evil.example" not in body["message"] and "pw" not in body["message"]
                seen.add(body["code"])
    finally:
        receiver.shutdown()
        receiver.server_close()
        thread.join(5)
    assert _Receiver.seen, "the loopback stand-in was never called"
    for headers in _Receiver.seen:
        assert headers.get("Authorization") == f"Bearer {PEER_TOKEN}"
        assert TOKEN not in str(headers) and READ_TOKEN not in str(headers)


def test_no_secret_in_logs_metrics_status_or_errors(cluster: Cluster) -> None:
    w1, w2 = cluster.urls
    status, body, _ = call("GET", f"{w1}/api/segments", None, bearer("wrong-" + TOKEN))
    assert status == 401 and TOKEN not in orjson.dumps(body).decode()
    secrets = (TOKEN, READ_TOKEN, PEER_TOKEN)
    for name, url in (("w1", w1), ("w2", w2)):
        log = cluster.workers.log(name)
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        for secret in secrets:
            assert secret not in log, name
            assert secret not in metrics, name
    for record in asyncio.run(cluster.workers.read("status", until_quiet=1.0)):
        for secret in secrets:
            assert secret.encode() not in (record.value or b"")
