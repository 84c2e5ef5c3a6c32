"""The two orderings the Faust runtime imposes on Faust (docs/faust.md, "Found and fixed"):
recovery seeks the inputs with the flow stopped, and a record is acknowledged only once its
changelog records are (no broker: the app is built, never started)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("faust")

from faust.tables.recovery import Recovery

from segstream.faust_runtime.changelog import ChangelogTrackingTable
from segstream.faust_runtime.recovery import SeekingRecovery
from segstream.faust_runtime.runtime import FaustRuntime
from segstream.faust_runtime.settings import FaustSettings


def _runtime(tmp_path: Path) -> FaustRuntime:
    settings = FaustSettings.from_env(
        {"SEGSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:1", "SEGSTREAM_STORE_DIR": str(tmp_path)}
    )
    return FaustRuntime(settings)


def test_the_app_uses_the_ordering_subclasses(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    assert isinstance(runtime.profiles, ChangelogTrackingTable)
    assert isinstance(runtime.meta, ChangelogTrackingTable)
    assert isinstance(runtime.app.tables.recovery, SeekingRecovery)


def test_recovery_seeks_with_the_flow_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = _runtime(tmp_path)
    app: Any = runtime.app
    seen: list[tuple[bool, bool]] = []

    async def faust_sequence(self: Recovery, generation_id: int = 0) -> None:
        # Where Faust resumes the inputs and seeks them, then resumes the flow.
        seen.append((app.flow_control.is_active(), app.consumer.flow_active))
        app.flow_control.resume()
        app.consumer.resume_flow()

    monkeypatch.setattr(Recovery, "on_recovery_completed", faust_sequence)
    app.flow_control.resume()  # as Faust leaves it after reading the changelogs
    asyncio.run(app.tables.recovery.on_recovery_completed(3))
    assert seen == [(False, False)]
    assert app.flow_control.is_active() and app.consumer.flow_active


class _Event:
    def __init__(self) -> None:
        self.acks = 0

    def ack(self) -> bool:
        self.acks += 1
        return True


def test_a_record_is_acknowledged_when_its_changelog_records_are(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)

    async def scenario() -> list[int]:
        loop = asyncio.get_running_loop()
        sent = [loop.create_future(), loop.create_future()]
        event = _Event()
        task = asyncio.ensure_future(runtime._ack_when_written(event, sent))
        acks = []
        await asyncio.sleep(0)
        acks.append(event.acks)
        sent[0].set_result(None)
        await asyncio.sleep(0)
        acks.append(event.acks)
        sent[1].set_result(None)
        await task
        acks.append(event.acks)
        return acks

    assert asyncio.run(scenario()) == [0, 0, 1]
