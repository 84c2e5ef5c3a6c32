"""How fast `segstream generate` writes workloads: prints a table and one JSON line per size.

Usage: .venv/bin/python bench/generate_speed.py [--sizes 10000x100000,100000x1000000]
       [--segments 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from segstream.generate import generate_workload, write_workload


def _measure(profiles: int, events: int, segments: int, seed: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="segstream-generate-") as out:
        workload = generate_workload(profiles=profiles, events=events, segments=segments, seed=seed)
        wall, cpu = time.perf_counter(), time.process_time()
        summary = write_workload(workload, Path(out))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size = summary.events_path.stat().st_size
    return {
        "profiles": profiles,
        "events": events,
        "segments": segments,
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "records_per_second": round(events / wall),
        "events_mib": round(size / 2**20, 1),
        # ru_maxrss is in KiB on Linux; it is the peak of the whole process so far.
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    """Run each size once and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000x100000,100000x1000000",
                        help="comma-separated PROFILESxEVENTS")  # fmt: skip
    parser.add_argument("--segments", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = []
    for size in args.sizes.split(","):
        profiles, events = (int(part) for part in size.lower().split("x"))
        results.append(_measure(profiles, events, args.segments, args.seed))
    header = f"{'profiles':>9} {'events':>10} {'segments':>8} {'s':>7} {'cpu s':>7} " + (
        f"{'rec/s':>8} {'MiB':>7} {'rss MiB':>8}"
    )
    print(header)
    for r in results:
        print(
            f"{r['profiles']:>9} {r['events']:>10} {r['segments']:>8} {r['seconds']:>7} "
            f"{r['cpu_seconds']:>7} {r['records_per_second']:>8} {r['events_mib']:>7} "
            f"{r['peak_rss_mib']:>8}"
        )
    for r in results:
        print(json.dumps({"bench": "generate_speed", **r}))


if __name__ == "__main__":
    main()
