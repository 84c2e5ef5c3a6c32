"""`segstream worker --runtime faust` processes against the test broker (as worker_harness)."""

from __future__ import annotations

import time
from typing import Any

from worker_harness import _WEB, WorkerCluster


class FaustCluster(WorkerCluster):
    """One application run by Faust-runtime workers."""

    worker_command = ("worker", "--runtime", "faust")

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
    """The first record of each `id`, and how many repeats there were.

    A repeat names the same transition: same profile, segment, `seq`, type and version. Its
    cause and `at` can differ: the records read again after a crash are interleaved anew
    across the two input topics (SPEC §2), and a timer or backfill runs at a later clock.
    """
    seen: dict[str, dict[str, Any]] = {}
    repeats = 0
    keys = ("profile_id", "segment_id", "seq", "type", "segment_version")
    for m in memberships:
        first = seen.get(m["id"])
        if first is None:
            seen[m["id"]] = m
            continue
        repeats += 1
        assert all(m[k] == first[k] for k in keys), (first, m)
    return list(seen.values()), repeats
