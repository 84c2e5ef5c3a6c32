"""`segstream deliver` against a real broker, real workers and a real HTTPS receiver.

Every transition reaches the receiver (set equality by id with the membership topic), in
order per (profile, segment) pair, although the receiver fails 30 % of requests, answers
slowly, and the deliver process is killed with SIGKILL twice; every request's signature
verifies with the `standardwebhooks` package; hosts outside the allow-list are refused.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from webhook_receiver import Receiver, accepted_events, deliver_env, make_secret
from worker_harness import SEGSTREAM, WorkerCluster

pytestmark = pytest.mark.kafka

TOKEN = "deliver-token-1"
PROFILES = 120
ROUNDS = 5
_WEB = re.compile(r"web listening on (http://[0-9.]+:[0-9]+)")


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else orjson.dumps(body)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


class Deliver:
    """`segstream deliver` processes, one at a time, with a log file per start."""

    def __init__(self, cluster: WorkerCluster, env: dict[str, str]) -> None:
        self.cluster = cluster
        self.env = {**cluster.env, **env}
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None

    def log_path(self) -> Path:
        return self.cluster.tmp / f"deliver-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        with self.log_path().open("ab") as log:
            self.process = subprocess.Popen(
                [SEGSTREAM, "deliver"], env=self.env, stdout=log, stderr=log
            )

    def metrics_url(self) -> str:
        found: list[str] = []

        def listening() -> bool:
            found[:] = _WEB.findall(self.log_path().read_text(errors="replace"))
            return bool(found)

        wait_for(listening, 30, "the deliver process's web server")
        return found[-1] + "/metrics"

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                assert self.process.wait(30) == 0
            finally:
                if self.process.poll() is None:
                    self.process.kill()
            self.process = None

    def logs(self) -> str:
        return "".join(
            (self.cluster.tmp / f"deliver-{n}.log").read_text(errors="replace")
            for n in range(1, self.starts + 1)
        )


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEGSTREAM, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def flaky(rng: random.Random) -> Callable[[str, int], tuple[int, float, dict[str, str]]]:
    """30 % failures (500, 503, 429 with Retry-After), some slow answers, some too slow."""

    def behave(path: str, number: int) -> tuple[int, float, dict[str, str]]:
        roll = rng.random()
        if roll < 0.15:
            return 500, 0.0, {}
        if roll < 0.22:
            return 503, 0.0, {}
        if roll < 0.30:
            return 429, 0.0, {"Retry-After": "0"}
        if roll < 0.38:
            return 200, 0.3, {}  # slow but in time
        if roll < 0.41:
            return 200, 1.5, {}  # processed, but answered after the sender gave up
        return 200, 0.0, {}

    return behave


@pytest.fixture(scope="module")
def cluster(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("deliver")
    receiver = Receiver(tmp, make_secret(), flaky(random.Random(21))).start()
    env = deliver_env(receiver)
    cluster = WorkerCluster(kafka_bootstrap, tmp, partitions=2, SEGSTREAM_API_TOKEN=TOKEN, **env)
    asyncio.run(cluster.create_topics())
    try:
        cluster.start("w1")
        url = cluster.wait_ready("w1")
        yield cluster, url, receiver
    finally:
        cluster.stop_all()
        receiver.stop()


def workload(rng: random.Random, round_: int) -> list[dict[str, Any]]:
    """Each profile's score and flag drawn again: many entries and exits per pair."""
    return [
        {
            "id": f"p{i:03d}-r{round_}",
            "type": "profile.updated",
            "profile_id": f"p{i:03d}",
            "at": "2026-01-01T00:00:00Z",
            "traits": {"custom": {"score": rng.randrange(100), "flag": rng.random() < 0.5}},
        }
        for i in range(PROFILES)
    ]


HIGH = {"trait": "custom.score", "op": "gte", "value": 50}
FLAGGED = {"trait": "custom.flag", "op": "eq", "value": True}
SEGMENTS = [
    {"id": "high", "name": "High", "condition": HIGH},
    {"id": "flagged", "name": "Flagged", "condition": FLAGGED},
]


def test_every_transition_arrives_in_order_through_failures_and_kills(cluster: Any) -> None:
    cluster_, url, receiver = cluster
    tmp: Path = cluster_.tmp
    (tmp / "segments.json").write_text(json.dumps(SEGMENTS))
    assert run_cli(cluster_.env, "segments", "apply", str(tmp / "segments.json")).returncode == 0
    destination = {
        "id": "crm",
        "url": receiver.url("/hooks/crm"),
        "batch": {"max_events": 25, "max_linger_ms": 200},
        "secret": {"env": "SEGSTREAM_WEBHOOK_SECRET_TEST"},
    }
    status, body = http("POST", f"{url}/api/destinations", destination)
    assert status == 201, body
    assert body["secret"] == {"env": "SEGSTREAM_WEBHOOK_SECRET_TEST"}
    assert receiver.secret not in json.dumps(body)

    rng = random.Random(7)
    asyncio.run(cluster_.produce([e for r in range(ROUNDS) for e in workload(rng, r)]))
    produced = asyncio.run(cluster_.read("membership", until_quiet=3.0, at_least=PROFILES))
    expected = [orjson.loads(m.value) for m in produced]
    expected_ids = {e["id"] for e in expected}
    assert len(expected) > 500, len(expected)

    deliver = Deliver(cluster_, {})
    started = time.monotonic()
    try:
        deliver.start()
        for fraction in (1 / 3, 2 / 3):

            def reached(fraction: float = fraction) -> bool:
                seen = {e["id"] for e in accepted_events(receiver.snapshot(), "/hooks/crm")}
                return len(seen) >= fraction * len(expected_ids)

            wait_for(reached, 90, f"{fraction:.0%} delivered")
            deliver.kill()
            deliver.start()

        def complete() -> bool:
            seen = {e["id"] for e in accepted_events(receiver.snapshot(), "/hooks/crm")}
            return seen >= expected_ids

        wait_for(complete, 120, "every transition delivered")
        elapsed = time.monotonic() - started
        metrics = urllib.request.urlopen(deliver.metrics_url(), timeout=10).read().decode()
        deliver.stop()
    finally:
        if deliver.process is not None:
            deliver.kill()
        print(deliver.logs()[-3000:])

    requests = [r for r in receiver.snapshot() if r.path == "/hooks/crm"]
    assert requests and all(r.signature_ok for r in requests)
    # Each attempt of one batch carries the same webhook-id; a fresh timestamp each time.
    assert all(r.headers["Content-Type"] == "application/json" for r in requests)
    delivered = accepted_events(requests, "/hooks/crm")
    delivered_ids = [e["id"] for e in delivered]
    assert set(delivered_ids) == expected_ids
    # Events arrive exactly as produced: a repeat is the same event, byte for byte as JSON.
    by_id = {e["id"]: e for e in expected}
    assert all(e == by_id[e["id"]] for e in delivered)
    # In order per pair: dropping repeats, each pair's seqs are 1, 2, 3... as produced.
    seqs: dict[tuple[str, str], list[int]] = {}
    seen: set[str] = set()
    for event in delivered:
        if event["id"] in seen:
            continue
        seen.add(event["id"])
        seqs.setdefault((event["profile_id"], event["segment_id"]), []).append(event["seq"])
    produced_seqs: dict[tuple[str, str], list[int]] = {}
    for event in expected:
        produced_seqs.setdefault((event["profile_id"], event["segment_id"]), []).append(
            event["seq"]
        )
    assert seqs == produced_seqs
    failures = sum(1 for r in requests if not 200 <= r.status < 300)
    repeats = len(delivered_ids) - len(expected_ids)
    print(
        f"\n{len(expected_ids)} transitions, {len(requests)} requests ({failures} failed), "
        f"{repeats} repeated events: repeat ratio {repeats / len(expected_ids):.3f}, "
        f"{elapsed:.1f} s with 2 SIGKILLs"
    )
    assert failures > 0
    assert 'segstream_deliver_batches_total{destination="crm",outcome="delivered"}' in metrics
    assert re.search(
        r'segstream_deliver_failed_attempts_total\{destination="crm",reason="http_5xx"\} [1-9]',
        metrics,
    )
    assert re.search(
        r'segstream_deliver_batches_total\{destination="crm",outcome="dead_lettered"\} 0\.0',
        metrics,
    )
    # Nothing was dead-lettered, so nothing broke the order.
    assert asyncio.run(cluster_.read("destination-deadletter", until_quiet=1.0)) == []
    assert receiver.secret not in deliver.logs()


def test_hosts_outside_the_allow_list_are_refused(cluster: Any) -> None:
    cluster_, url, _ = cluster
    for bad, reason in [
        ("https://example.org/hook", "allow-list"),
        ("http://127.0.0.1:9/hook", "scheme must be https"),
    ]:
        destination = {"id": "bad", "url": bad, "secret": {"env": "SEGSTREAM_WEBHOOK_SECRET_TEST"}}
        status, body = http("POST", f"{url}/api/destinations", destination)
        assert (status, body["code"]) == (422, "invalid_destination"), body
        assert reason in body["message"]
        path = cluster_.tmp / "bad.json"
        path.write_text(json.dumps(destination))
        result = run_cli(cluster_.env, "destinations", "apply", str(path))
        assert result.returncode == 1 and reason in result.stdout, result.stdout
    # An allowed name whose address is private is refused unless its network is allowed.
    env = {**cluster_.env, "SEGSTREAM_DELIVER_ALLOWED_HOSTS": "10.1.2.3"}
    path.write_text(json.dumps({**destination, "url": "https://10.1.2.3/hook"}))
    result = run_cli(env, "destinations", "apply", str(path))
    assert result.returncode == 1 and "not public" in result.stdout, result.stdout
    status, body = http("GET", f"{url}/api/destinations/bad")
    assert status == 404


def test_cli_lists_and_deletes_destinations(cluster: Any) -> None:
    cluster_, url, receiver = cluster
    path = cluster_.tmp / "cli.json"
    path.write_text(
        json.dumps(
            [
                {
                    "id": "cli-a",
                    "url": receiver.url("/hooks/cli-a"),
                    "segments": ["high"],
                    "transitions": ["entered"],
                    "secret": {"file": "cli-a.secret"},
                }
            ]
        )
    )
    result = run_cli(cluster_.env, "destinations", "apply", str(path))
    assert result.returncode == 0 and "cli-a v1 created" in result.stdout, result.stdout
    result = run_cli(cluster_.env, "destinations", "apply", str(path))
    assert "cli-a v1 unchanged" in result.stdout
    listed = run_cli(cluster_.env, "destinations", "list", "--json")
    rows = {json.loads(line)["id"]: json.loads(line) for line in listed.stdout.splitlines()}
    assert rows["cli-a"]["segments"] == ["high"] and rows["cli-a"]["version"] == 1
    assert rows["cli-a"]["secret"] == {"file": "cli-a.secret"}
    assert run_cli(cluster_.env, "destinations", "delete", "cli-a").stdout.strip() == (
        "cli-a v1 deleted"
    )
    result = run_cli(cluster_.env, "destinations", "apply", str(path))
    assert "cli-a v2 created" in result.stdout  # versions are never reused
    assert run_cli(cluster_.env, "destinations", "delete", "cli-a").returncode == 0
    status, body = http("GET", f"{url}/api/destinations")
    assert status == 200 and "cli-a" not in {d["id"] for d in body["destinations"]}


def membership_event(profile: str, segment: str, seq: int) -> dict[str, Any]:
    return {
        "id": f"{profile}/{segment}/{seq}",
        "type": "segment.entered" if seq % 2 else "segment.left",
        "profile_id": profile,
        "segment_id": segment,
        "segment_version": 1,
        "seq": seq,
        "at": "2026-01-01T00:00:00Z",
        "emitted_at": "2026-01-01T00:00:00.001Z",
        "cause": {"kind": "event", "event_id": f"e{seq}"},
    }


def test_dead_letters_redirects_filters_and_start_positions(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    def behave(path: str, number: int) -> tuple[int, float, dict[str, str]]:
        if path == "/redirect":
            return 307, 0.0, {"Location": receiver.url("/elsewhere")}
        return (500, 0.0, {}) if path == "/broken" else (200, 0.0, {})

    receiver = Receiver(tmp_path, make_secret(), behave).start()
    env = deliver_env(receiver, SEGSTREAM_DELIVER_MAX_ATTEMPTS="3")
    cluster = WorkerCluster(kafka_bootstrap, tmp_path, partitions=2, **env)
    asyncio.run(cluster.create_topics())
    secret = {"env": "SEGSTREAM_WEBHOOK_SECRET_TEST"}
    destinations = [
        {"id": "broken", "url": receiver.url("/broken"), "secret": secret},
        {"id": "moved", "url": receiver.url("/redirect"), "secret": secret},
        {
            "id": "picky",
            "url": receiver.url("/picky"),
            "segments": ["a"],
            "transitions": ["left"],
            "batch": {"max_events": 1000, "max_linger_ms": 0},
            "secret": secret,
        },
    ]
    destinations.append(
        {"id": "replay", "url": receiver.url("/replay"), "secret": secret, "start": "earliest"}
    )
    # Committed before the destinations exist: only the one that starts at `earliest` gets it.
    old = membership_event("p9", "a", 2)  # a `left` of segment a: picky would want it
    asyncio.run(cluster.produce([(cluster.topic("membership"), b"p9", orjson.dumps(old))]))
    (tmp_path / "destinations.json").write_text(json.dumps(destinations))
    result = run_cli(cluster.env, "destinations", "apply", str(tmp_path / "destinations.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    events = [membership_event(f"p{i}", s, n) for i in range(4) for s in "ab" for n in (1, 2)]
    asyncio.run(
        cluster.produce(
            (cluster.topic("membership"), e["profile_id"].encode(), orjson.dumps(e)) for e in events
        )
    )
    deliver = Deliver(cluster, {})
    try:
        deliver.start()
        wait_for(
            lambda: (
                len(asyncio.run(cluster.read("destination-deadletter", until_quiet=0.5, timeout=5)))
                >= 2
                and len(accepted_events(receiver.snapshot(), "/picky")) == 4
            ),
            60,
            "dead letters and the filtered deliveries",
        )
        metrics = urllib.request.urlopen(deliver.metrics_url(), timeout=10).read().decode()
        deliver.stop()
    finally:
        if deliver.process is not None:
            deliver.kill()
        receiver.stop()
    dead = asyncio.run(cluster.read("destination-deadletter", until_quiet=0.5))
    by_destination: dict[str, list[Any]] = {}
    for record in dead:
        by_destination.setdefault(record.key.decode(), []).append(record)
    for destination_id, reason in (("broken", "http_5xx"), ("moved", "redirect")):
        (record,) = by_destination[destination_id]
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["segstream.error.reason"] == reason
        assert headers["segstream.error.attempts"] == "3"
        assert headers["segstream.webhook.id"].startswith("msg_")
        body = orjson.loads(record.value)
        assert body["destination_id"] == destination_id
        assert sorted(e["id"] for e in body["events"]) == sorted(e["id"] for e in events)
        assert re.search(
            rf'segstream_deliver_batches_total\{{destination="{destination_id}",'
            r'outcome="dead_lettered"\} 1\.0',
            metrics,
        )
    # The redirect was not followed: nothing reached its target.
    assert not [r for r in receiver.snapshot() if r.path == "/elsewhere"]
    picky = accepted_events(receiver.snapshot(), "/picky")
    assert sorted(e["id"] for e in picky) == sorted(
        e["id"] for e in events if e["segment_id"] == "a" and e["type"] == "segment.left"
    )
    replayed = accepted_events(receiver.snapshot(), "/replay")
    assert sorted(e["id"] for e in replayed) == sorted([old["id"], *(e["id"] for e in events)])
    assert old["id"] not in {e["id"] for e in picky}
    assert 'segstream_deliver_failed_attempts_total{destination="moved",reason="redirect"} 3.0' in (
        metrics
    )
