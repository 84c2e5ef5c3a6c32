"""CPU per event of one partition task, in process: the worker's own code without the broker.

Run: `python bench/worker_cpu.py` (5,000 profiles, 50,000 events, the generator's 1,000
segments; `--segment-templates 40` for run D's mix). A `PartitionTask` on a real RocksDB store
in a temporary directory takes the workload in batches of 2,000 records (the bulk batch size),
as the worker's loop hands them over; its producer is the unit tests' in-memory fake
(`tests/unit/app/shell_fakes.py`), so the figure is what the engine, the store, the state
layout and the collector cost, without aiokafka and without the broker's round trips. That
makes it repeatable on a shared machine where `bench/e2e.py`'s rates are not: CPU time
(`time.process_time`) is measured, and the time spent in the cyclic garbage collector
(`gc.callbacks`).

Each run compares the collector settings in one process, alternating: `default` (CPython's
thresholds, nothing frozen) and `worker` (what `segstream.app.heap` sets: `tune()` before
the segments are installed, `settle()` after). Prints a table and, last, one JSON object.
This is not an end-to-end test; `bench/e2e.py` measures the worker on a real broker.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "unit" / "app"))

from shell_fakes import FakeProducer, Feed, batch, running_task  # noqa: E402

from segstream.app import heap  # noqa: E402
from segstream.app.isolation import run_batch  # noqa: E402
from segstream.generate import generate_workload  # noqa: E402

BATCH = 2000


class GcClock:
    """Seconds of CPU spent in the cyclic collector while installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._started = 0.0

    def __call__(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started
            self.collections += 1


def one_run(
    definitions: list[dict[str, Any]], records: list[dict[str, Any]], tuned: bool
) -> dict[str, Any]:
    defaults = gc.get_threshold()
    if tuned:
        heap.tune()
    with tempfile.TemporaryDirectory(prefix="worker-cpu-") as tmp:
        producer = FakeProducer()
        task = running_task(Path(tmp), producer)
        feed = Feed(task)
        clock = GcClock()

        async def main() -> float:
            control = [feed.segment(d["id"], d["condition"]) for d in definitions]
            await run_batch(task, batch(*control))
            consumed = []
            for record in records:
                is_profile = record["type"] in ("profile.updated", "profile.deleted")
                topic = feed.topics.profiles if is_profile else feed.topics.activity
                key = record["profile_id"].encode()
                consumed.append(feed._record(topic, key, orjson.dumps(record)))
            if tuned:
                heap.settle()
            gc.callbacks.append(clock)
            try:
                started = time.process_time()
                for i in range(0, len(consumed), BATCH):
                    await run_batch(task, batch(*consumed[i : i + BATCH]))
                    producer.committed.clear()
                return time.process_time() - started
            finally:
                gc.callbacks.remove(clock)

        cpu = asyncio.run(main())
        if task.store is not None:
            task.store.close()
    gc.unfreeze()
    gc.set_threshold(*defaults)
    gc.collect()
    return {
        "settings": "worker" if tuned else "default",
        "cpu_s": round(cpu, 3),
        "cpu_us_per_event": round(cpu / len(records) * 1e6, 1),
        "gc_s": round(clock.seconds, 3),
        "gc_share": round(clock.seconds / cpu, 3) if cpu else None,
        "collections": clock.collections,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=5000)
    parser.add_argument("--events", type=int, default=50000)
    parser.add_argument("--segments", type=int, default=1000)
    parser.add_argument("--segment-templates", type=int, default=0)
    parser.add_argument("--runs", type=int, default=2, help="of each setting, alternating")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    workload = generate_workload(
        profiles=args.profiles,
        events=args.events,
        segments=args.segments,
        seed=args.seed,
        segment_templates=args.segment_templates,
    )
    definitions = list(workload.definitions())
    records = list(workload.records())
    runs = []
    for _ in range(args.runs):
        for tuned in (False, True):
            runs.append(one_run(definitions, records, tuned))
            print(runs[-1], file=sys.stderr, flush=True)
    summary: dict[str, Any] = {}
    for name in ("default", "worker"):
        mine = [r for r in runs if r["settings"] == name]
        summary[name] = {
            "cpu_us_per_event": statistics.median(r["cpu_us_per_event"] for r in mine),
            "gc_share": statistics.median(r["gc_share"] for r in mine),
        }
    ratio = summary["worker"]["cpu_us_per_event"] / summary["default"]["cpu_us_per_event"]
    print(f"{args.events} events, {args.profiles} profiles, {args.segments} segments, 1 partition")
    print(f"{'settings':<10} {'CPU us/event (median)':>22} {'GC share':>9}")
    for name, row in summary.items():
        print(f"{name:<10} {row['cpu_us_per_event']:>22} {row['gc_share']:>9}")
    print(f"worker / default: {ratio:.3f}")
    print(json.dumps({"args": vars(args), "runs": runs, "summary": summary, "ratio": ratio}))


if __name__ == "__main__":
    main()
