"""Engine benchmark: events/s of the in-process engine for 0..10,000 segments, and replay wall time.

Run: `python bench/engine.py` (defaults: 100k profiles, 1M events, 0/10/100/1000/10000
segments). Prints a table and, last, one JSON object. Ratios are against the 0-segment run of
the same invocation, since absolute figures depend on the machine.

Each mix of K segments takes `--v12-share` of them (default a fifth) from the generator's
definitions that use a v1.2 construct (SPEC §4.4: sequences, not_followed_by, for_at_least,
within_next, anniversaries, matches) and the rest from the others, in file order.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from segstream.engine.replay import ReplaySession, replay_lines
from segstream.generate import generate_workload, write_workload
from segstream.rules.references import referenced_segments

ROOT = Path(__file__).resolve().parent.parent


_V12_KEYS = ("sequence", "not_followed_by", "for_at_least")
_V12_OPS = ("within_next", "anniversary_within_next", "anniversary_within_last", "matches")


def uses_v12(node: Any) -> bool:
    """True when a condition uses a construct of SPEC §4.4 anywhere."""
    if isinstance(node, dict):
        if any(key in node for key in _V12_KEYS) or node.get("op") in _V12_OPS:
            return True
        return any(uses_v12(value) for value in node.values())
    if isinstance(node, list):
        return any(uses_v12(item) for item in node)
    return False


def mix(definitions: list[Any], count: int, v12_share: float) -> list[Any]:
    """`count` definitions in file order, `v12_share` of them using v1.2 constructs; a
    definition whose referenced segment is not in the mix is passed over."""
    want_v12 = round(count * v12_share)
    quota = {True: want_v12, False: count - want_v12}
    chosen: list[Any] = []
    ids: set[str] = set()
    for definition in definitions:
        kind = uses_v12(definition["condition"])
        if quota[kind] and set(referenced_segments(definition["condition"])) <= ids:
            chosen.append(definition)
            ids.add(definition["id"])
            quota[kind] -= 1
        if not any(quota.values()):
            break
    if len(chosen) != count:
        raise SystemExit(f"the workload has too few definitions for a mix of {count}")
    return chosen


def engine_run(definitions: list[Any], lines: list[bytes]) -> dict[str, Any]:
    """Feed every line through one ReplaySession; time only the record loop."""
    session = ReplaySession()
    started = time.perf_counter()
    for definition in definitions:
        problems = session.define(definition)
        if problems:
            raise SystemExit(f"generated definition rejected: {problems[:3]}")
    define_s = time.perf_counter() - started
    rejected = 0

    def count_rejected(_n: int, _reason: str) -> None:
        nonlocal rejected
        rejected += 1

    gc.collect()
    started = time.perf_counter()
    transitions = sum(1 for _ in replay_lines(session, lines, count_rejected))
    elapsed = time.perf_counter() - started
    return {
        "segments": len(definitions),
        "events": len(lines),
        "seconds": round(elapsed, 3),
        "define_seconds": round(define_s, 3),
        "events_per_s": round(len(lines) / elapsed),
        "transitions": transitions,
        "transitions_per_event": round(transitions / len(lines), 4),
        "rejected": rejected,
    }


def naive_run(definitions: list[Any], lines: list[bytes]) -> dict[str, Any]:
    """The reference evaluator of the tests on the same slice (for scale, not for speed)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from reference.naive import naive_replay

    started = time.perf_counter()
    result = naive_replay(definitions, [line.decode() for line in lines])
    elapsed = time.perf_counter() - started
    return {
        "segments": len(definitions),
        "events": len(lines),
        "seconds": round(elapsed, 3),
        "events_per_s": round(len(lines) / elapsed, 1),
        "transitions": len(result.memberships),
    }


def cli_run(segments_path: Path, events_path: Path, out_dir: Path) -> dict[str, Any]:
    """`segstream replay` end to end: start-up, parsing and writing output included."""
    out = out_dir / "out.jsonl"
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "segstream",
            "replay",
            "--segments",
            str(segments_path),
            "--events",
            str(events_path),
            "--out",
            str(out),
        ],
        check=True,
    )
    elapsed = time.perf_counter() - started
    with out.open("rb") as f:
        transitions = sum(1 for _ in f)
    return {"seconds": round(elapsed, 2), "transitions": transitions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--segments", default="0,10,100,1000,10000")
    parser.add_argument("--cli-segments", default="0,1000,10000")
    parser.add_argument("--naive-events", type=int, default=2_000)
    parser.add_argument("--naive-segments", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--v12-share", type=float, default=0.2)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds over every segment count (interleaved); each count keeps its best round, "
        "which on a shared machine is the one least disturbed",
    )
    args = parser.parse_args()
    counts = [int(k) for k in args.segments.split(",") if k]
    cli_counts = [int(k) for k in args.cli_segments.split(",") if k]

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        # Enough definitions of both kinds for the largest mix (about 15% use v1.2).
        top = max([*counts, *cli_counts, args.naive_segments])
        workload = generate_workload(
            profiles=args.profiles,
            events=args.events,
            segments=max(top * 2, 2000),
            seed=args.seed,
        )
        summary = write_workload(workload, tmpdir / "w")
        lines = summary.events_path.read_bytes().splitlines()
        all_definitions = orjson.loads(summary.segments_path.read_bytes())

        best: dict[int, dict[str, Any]] = {}
        for _ in range(args.repeat):
            for k in counts:
                chosen = mix(all_definitions, k, args.v12_share)
                run = engine_run(chosen, lines)
                run["v1.2_segments"] = sum(uses_v12(d["condition"]) for d in chosen)
                print(f"engine {k:>6} segments: {run['events_per_s']:>8} events/s", flush=True)
                if k not in best or run["events_per_s"] > best[k]["events_per_s"]:
                    best[k] = run
        results = [best[k] for k in counts]
        base = results[0]["events_per_s"] if results and results[0]["segments"] == 0 else None
        for r in results:
            r["ratio_to_0"] = round(r["events_per_s"] / base, 3) if base else None

        cli = []
        for k in cli_counts:
            seg_path = tmpdir / f"segments-{k}.json"
            seg_path.write_bytes(orjson.dumps(mix(all_definitions, k, args.v12_share)))
            cli.append({"segments": k, **cli_run(seg_path, summary.events_path, tmpdir)})
            print(f"replay {k:>6} segments: {cli[-1]['seconds']} s", flush=True)

        naive_defs = mix(all_definitions, args.naive_segments, args.v12_share)
        naive_lines = lines[: args.naive_events]
        naive = naive_run(naive_defs, naive_lines) if args.naive_events else {}
        engine_small = engine_run(naive_defs, naive_lines) if args.naive_events else {}

    print()
    print(f"{'segments':>8} {'events/s':>10} {'ratio':>7} {'trans/event':>12}")
    for r in results:
        print(
            f"{r['segments']:>8} {r['events_per_s']:>10} {r['ratio_to_0'] or '':>7} "
            f"{r['transitions_per_event']:>12}"
        )
    print()
    print(f"{'replay CLI':>10} {'segments':>8} {'seconds':>8} {'transitions':>12}")
    for c in cli:
        print(f"{'':>10} {c['segments']:>8} {c['seconds']:>8} {c['transitions']:>12}")
    print()
    if naive:
        print(
            f"naive reference: {naive['events_per_s']} events/s vs engine "
            f"{engine_small['events_per_s']} events/s ({args.naive_events} events, "
            f"{args.naive_segments} segments)"
        )
    print(
        json.dumps(
            {
                "workload": {"profiles": args.profiles, "events": args.events, "seed": args.seed},
                "engine": results,
                "replay_cli": cli,
                "naive": naive,
                "engine_on_naive_slice": engine_small,
            }
        )
    )


if __name__ == "__main__":
    main()
