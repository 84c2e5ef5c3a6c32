"""`segstream worker --runtime faust` processes against the test broker (as worker_harness)."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from typing import Any

from worker_harness import _WEB, SEGSTREAM, WorkerCluster


class FaustCluster(WorkerCluster):
    """One application run by Faust-runtime workers."""

    def start(self, name: str = "w1", store: str | None = None) -> None:
        env = {
            **self.env,
            "SEGSTREAM_STORE_DIR": str(self.tmp / (store or name)),
            "SEGSTREAM_WORKER_ID": name,
        }
        with (self.tmp / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [SEGSTREAM, "worker", "--runtime", "faust"], env=env, stdout=log, stderr=log
            )

    def wait_ready(self, name: str = "w1", timeout: float = 90) -> str:
        """As the native worker's, but fails at once when the process is gone."""
        process = self.processes[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"worker {name} exited:\n{self.log(name)[-5000:]}")
            if _WEB.findall(self.log(name)):
                return super().wait_ready(name, max(1.0, deadline - time.monotonic()))
            time.sleep(0.2)
        raise AssertionError(f"worker {name} never started its web server:\n{self.log(name)}")


def without_repeats(memberships: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The first record of each `id` (a repeat carries the same id and the same content),
    and how many repeats there were."""
    seen: dict[str, dict[str, Any]] = {}
    repeats = 0
    for m in memberships:
        first = seen.get(m["id"])
        if first is None:
            seen[m["id"]] = m
            continue
        repeats += 1
        same = {k: v for k, v in m.items() if k not in ("emitted_at",)}
        was = {k: v for k, v in first.items() if k not in ("emitted_at",)}
        assert same == was or _same_but_time(same, was), (first, m)
    return list(seen.values()), repeats


def _same_but_time(a: dict[str, Any], b: dict[str, Any]) -> bool:
    # A repeated timer or backfill transition is computed again at a later clock: its `at`
    # may differ, never its pair, seq, type, version or cause.
    keys = ("profile_id", "segment_id", "seq", "type", "segment_version", "cause")
    return all(a.get(k) == b.get(k) for k in keys)


def repeat_counts(memberships: list[dict[str, Any]]) -> Counter[str]:
    """How often each id came out."""
    return Counter(m["id"] for m in memberships)
