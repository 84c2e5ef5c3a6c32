"""`segstream segments`, `tail` and `produce` against a real broker, run in-process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from segstream.app.segment_writer import read_topic_to_end
from segstream.app.settings import WorkerSettings
from segstream.app.topics import create_topics, topic_specs
from segstream.cli import main

pytestmark = pytest.mark.kafka


def fresh_env(bootstrap: str) -> dict[str, str]:
    """Environment for the CLI on topics of their own (a unique prefix), created here."""
    env = {
        "SEGSTREAM_KAFKA_BOOTSTRAP": bootstrap,
        "SEGSTREAM_TOPIC_PREFIX": f"cli-{uuid.uuid4().hex[:10]}",
        "SEGSTREAM_PARTITIONS": "2",
    }
    settings = WorkerSettings.from_env(env)
    asyncio.run(create_topics(settings.client_kwargs(), topic_specs(settings)))
    return env


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


async def produce(
    env: dict[str, str], topic: str, records: list[tuple[bytes, bytes]], transactional: bool
) -> None:
    """Write (key, value) records, in one transaction when `transactional` (as workers do)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=env["SEGSTREAM_KAFKA_BOOTSTRAP"],
        transactional_id=f"test-{uuid.uuid4().hex}" if transactional else None,
        enable_idempotence=True,
    )
    await producer.start()
    try:
        if transactional:
            await producer.begin_transaction()
        for key, value in records:
            await producer.send(topic, key=key, value=value)
        if transactional:
            await producer.commit_transaction()
        await producer.flush()
    finally:
        await producer.stop()


async def read_all(env: dict[str, str], topic: str) -> list[Any]:
    """Every committed record of every partition of `topic`."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=env["SEGSTREAM_KAFKA_BOOTSTRAP"], isolation_level="read_committed"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(2 if "segments" not in topic else 1)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        return await read_topic_to_end(consumer, partitions)
    finally:
        await consumer.stop()


def membership(profile: str, segment: str, seq: int, entered: bool, cause: dict[str, str]) -> bytes:
    """A SPEC §6 membership event."""
    return orjson.dumps(
        {
            "id": f"{profile}:{segment}:{seq}",
            "type": "segment.entered" if entered else "segment.left",
            "profile_id": profile,
            "segment_id": segment,
            "segment_version": 2,
            "seq": seq,
            "at": f"2026-11-28T10:00:0{seq}Z",
            "emitted_at": f"2026-11-28T10:00:0{seq}.012Z",
            "cause": cause,
        }
    )


def test_tail_prints_committed_membership_events(kafka_bootstrap: str) -> None:
    env = fresh_env(kafka_bootstrap)
    topic = f"{env['SEGSTREAM_TOPIC_PREFIX']}.membership"
    events = [
        (b"p1", membership("p1", "vip", 1, True, {"kind": "event", "event_id": "e42"})),
        (b"p2", membership("p2", "vip", 1, True, {"kind": "segment_created"})),
        (b"p1", membership("p1", "vip", 2, False, {"kind": "timer"})),
        (
            b"p2",
            membership("p2", "vip-fr", 1, True, {"kind": "segment_updated", "segment_id": "vip"}),
        ),
    ]
    asyncio.run(produce(env, topic, events, transactional=True))

    shown = run(env, "tail", "--from-beginning", "--max", "4", "--timeout", "20")
    assert shown.exit_code == 0, shown.output
    assert sorted(shown.stdout.splitlines()) == sorted(
        [
            "2026-11-28T10:00:01Z + p1 vip@2#1 event e42",
            "2026-11-28T10:00:01Z + p2 vip@2#1 segment_created",
            "2026-11-28T10:00:02Z - p1 vip@2#2 timer",
            "2026-11-28T10:00:01Z + p2 vip-fr@2#1 segment_updated (via vip)",
        ]
    )

    raw = run(env, "tail", "--from-beginning", "--json", "--max", "4", "--timeout", "20")
    assert sorted(raw.stdout.encode().splitlines()) == sorted(value for _, value in events)

    counted = run(env, "tail", "--counts", "--timeout", "3")
    assert counted.exit_code == 0, counted.output
    # Counted over the whole topic, though nothing old is printed.
    assert counted.stdout.splitlines() == ["members: vip=1 vip-fr=1"]

    # From the end (the default): only what is committed after the start is shown.
    later = (b"p3", membership("p3", "vip", 1, True, {"kind": "event", "event_id": "e7"}))
    writer = threading.Timer(3.0, lambda: asyncio.run(produce(env, topic, [later], True)))
    writer.start()
    try:
        fresh = run(env, "tail", "--max", "1", "--timeout", "25")
    finally:
        writer.join()
    assert fresh.stdout.splitlines() == ["2026-11-28T10:00:01Z + p3 vip@2#1 event e7"]


def test_produce_routes_lines_to_their_topics_with_profile_keys(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = fresh_env(kafka_bootstrap)
    prefix = env["SEGSTREAM_TOPIC_PREFIX"]
    segment = {"id": "fans", "name": "Fans", "condition": {"event": "page.viewed"}}
    lines = [
        b'{"id":"e1","type":"profile.updated","profile_id":"p1","at":"2026-11-28T10:00:00Z",'
        b'"traits":{"gender":"female"}}',
        b'{"id": "e2", "type": "page.viewed", "profile_id": "p2", "at": "2026-11-28T10:00:01Z"}',
        orjson.dumps(
            {"type": "segment.upserted", "at": "2026-11-28T10:00:02Z", "segment": segment}
        ),
        b'{"id":"e3","type":"profile.deleted","profile_id":"p1","at":"2026-11-28T10:00:03Z"}',
        b"this is not JSON",
        b'{"type":"segment.deleted","at":"2026-11-28T10:00:04Z","segment_id":"nobody"}',
        b'{"id":"e4","type":"custom.gift_wrapped","profile_id":"p\xc3\xa9","at":"2026-11-28T10:00:05Z"}',
    ]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n\n")

    result = run(env, "produce", str(events))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("produced 5 records (2 profile, 3 activity)")
    assert "applied 1 segment changes, rejected 1" in result.stdout
    assert "line 6: there is no segment 'nobody' to delete" in result.stderr

    profiles = asyncio.run(read_all(env, f"{prefix}.profiles"))
    activity = asyncio.run(read_all(env, f"{prefix}.activity"))
    assert sorted((r.key, r.value) for r in profiles) == sorted(
        [(b"p1", lines[0]), (b"p1", lines[3])]
    )
    assert sorted((r.key or b"", r.value) for r in activity) == sorted(
        [(b"p2", lines[1]), (b"", lines[4]), ("pé".encode(), lines[6])]
    )
    # One profile's records share a partition, in file order.
    assert len({r.partition for r in profiles}) == 1
    assert [r.value for r in profiles] == [lines[0], lines[3]]
    segments = asyncio.run(read_all(env, f"{prefix}.segments"))
    assert [orjson.loads(r.value) for r in segments] == [{**segment, "version": 1}]


def test_produce_keeps_to_the_rate(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = fresh_env(kafka_bootstrap)
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(
            f'{{"id":"e{n}","type":"page.viewed","profile_id":"p{n}",'
            f'"at":"2026-11-28T10:00:00Z"}}\n'
            for n in range(30)
        )
    )
    began = time.monotonic()
    result = run(env, "produce", str(events), "--rate", "50")
    elapsed = time.monotonic() - began
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("produced 30 records (0 profile, 30 activity)")
    # 30 records at 50/s: the last one is due 0.58 s after the first.
    assert elapsed >= 0.55


def status(partition: int, segments: dict[str, dict[str, Any]]) -> tuple[bytes, bytes]:
    """A status record as workers write them (contract: key = the input partition)."""
    value = {"partition": partition, "worker": "w1", "at": "2026-11-28T10:00:00Z"}
    value["segments"] = segments  # type: ignore[assignment]
    return str(partition).encode(), orjson.dumps(value)


def test_segments_apply_list_and_delete(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = fresh_env(kafka_bootstrap)
    prefix = env["SEGSTREAM_TOPIC_PREFIX"]
    definitions = [
        {"id": "ready-one", "name": "Ready", "condition": {"trait": "gender", "op": "exists"}},
        {"id": "half", "name": "Half done", "condition": {"event": "cart.added"}},
        {"id": "edited", "name": "Edited", "condition": {"trait": "age", "op": "gt", "value": 1}},
        {"id": "edited", "name": "Edited", "condition": {"trait": "age", "op": "gt", "value": 2}},
        {"id": "bad", "name": "Bad", "condition": {"trait": "age", "op": "gt", "value": "x"}},
    ]
    path = tmp_path / "segments.json"
    path.write_bytes(orjson.dumps(definitions))

    applied = run(env, "segments", "apply", str(path))
    assert applied.exit_code == 1
    lines = applied.stdout.splitlines()
    assert lines[:5] == [
        "ready-one v1 created",
        "half v1 created",
        "edited v1 created",
        "edited v2 changed",
        "bad rejected",
    ]
    # The wording is the rule checker's; the form is `<id>: <json path>: <message>`.
    assert len(lines) == 6 and lines[5].startswith("bad: condition.value: ")
    assert "1 of 5 definitions were rejected" in applied.stderr

    def entry(version: int, members: int, ready: bool) -> dict[str, Any]:
        return {"version": version, "members": members, "ready": ready}

    statuses = [
        # Superseded by the later record of partition 1.
        status(1, {"ready-one": entry(1, 99, False)}),
        status(0, {"ready-one": entry(1, 5, True), "half": entry(1, 2, True)}),
        status(
            1,
            {
                "ready-one": entry(1, 7, True),
                "half": entry(1, 1, False),
                "edited": entry(1, 4, True),
            },
        ),
    ]
    asyncio.run(produce(env, f"{prefix}.status", statuses, transactional=False))

    listed = run(env, "segments", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["id"], r["version"], r["status"], r["members"]) for r in rows] == [
        ("edited", 2, "building", 0),  # the status is of version 1: it does not count
        ("half", 1, "building", 3),  # partition 1 is not done
        ("ready-one", 1, "ready", 12),
    ]
    assert rows[0]["name"] == "Edited" and rows[0]["description"] is None

    table = run(env, "segments", "list")
    assert table.stdout.splitlines()[0].split() == ["ID", "VERSION", "STATUS", "MEMBERS", "NAME"]
    assert table.stdout.splitlines()[3].split() == ["ready-one", "1", "ready", "12", "Ready"]

    deleted = run(env, "segments", "delete", "half")
    assert deleted.exit_code == 0 and deleted.stdout == "half v1 deleted\n"
    unknown = run(env, "segments", "delete", "half")
    assert unknown.exit_code == 1
    assert "there is no segment 'half' to delete" in unknown.stderr
    remaining = run(env, "segments", "list", "--json")
    assert [orjson.loads(line)["id"] for line in remaining.stdout.splitlines()] == [
        "edited",
        "ready-one",
    ]


def test_make_run_demo_stops_everything_on_ctrl_c(kafka_bootstrap: str, tmp_path: Path) -> None:
    """deploy/kafka-local/run-worker.sh end to end, then a Ctrl-C to its process group."""
    script = Path(__file__).resolve().parents[2] / "deploy" / "kafka-local" / "run-worker.sh"
    env = {
        **os.environ,
        **fresh_env(kafka_bootstrap),
        "SEGSTREAM_RUN_DIR": str(tmp_path / "run"),
        "SEGSTREAM_WEB_PORT": "0",
        "SEGSTREAM_SESSION_TIMEOUT_S": "10",
        "SEGSTREAM_HEARTBEAT_INTERVAL_S": "1",
        "DEMO_PROFILES": "50",
        "DEMO_EVENTS": "2000",
        "DEMO_RATE": "100",
        "SEGSTREAM_BIN": str(Path(sys.executable).with_name("segstream")),
    }
    output = tmp_path / "output.txt"
    with output.open("wb") as sink:
        # Its own session, like a terminal's foreground job; SIGINT not ignored (a shell
        # that started this test in the background may have ignored it).
        script_run = subprocess.Popen(
            ["bash", str(script)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and b" + p" not in output.read_bytes():
                assert script_run.poll() is None, output.read_text()
                time.sleep(0.5)
            text = output.read_text()
            assert " + p" in text, text
            assert "us-women v1 created" in text
            # What a terminal does on Ctrl-C: SIGINT to the whole foreground process group.
            os.killpg(script_run.pid, signal.SIGINT)
            script_run.wait(timeout=45)
        finally:
            if script_run.poll() is None:
                os.killpg(script_run.pid, signal.SIGKILL)
                script_run.wait()
    assert script_run.returncode == 130, output.read_text()
    # Nothing of the group is left: worker, producer and tail all stopped.
    left = subprocess.run(
        ["pgrep", "-g", str(script_run.pid)], capture_output=True, text=True, check=False
    )
    assert left.stdout == "", left.stdout
    assert "members: " in output.read_text()
