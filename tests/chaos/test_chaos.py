"""A short chaos round in the test suite (`make chaos` runs longer ones)."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
from pathlib import Path

import pytest

from chaos import run_chaos

pytestmark = [pytest.mark.kafka]


def test_chaos_round_loses_and_repeats_nothing(tmp_path: Path) -> None:
    if os.environ.get("SEGSTREAM_KAFKA_BOOTSTRAP"):
        pytest.skip("the chaos round restarts its own broker; not with an external one")
    if shutil.which("java") is None:
        pytest.skip("the chaos round needs java for its own broker")
    seed = int(os.environ.get("SEGSTREAM_CHAOS_SEED", random.SystemRandom().randrange(1 << 31)))
    print(f"chaos seed {seed} (SEGSTREAM_CHAOS_SEED={seed} repeats it)")
    report = asyncio.run(
        run_chaos(
            tmp_path,
            duration=0,
            seed=seed,
            phase_s=8,
            profiles=400,
            events=6000,
            max_broker_restarts=1,
            fault_every=(2.0, 4.5),
            backfill_batch=25,
        )
    )
    assert report.rounds == 1
    assert report.kills + report.graceful + report.broker_restarts > 0
    assert report.anomalies == 0, (report.summary(), report.problems)
    assert report.crashes == 0, (report.summary(), report.problems)
