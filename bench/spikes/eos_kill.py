"""Spike: kill -9 a faust exactly_once worker mid-stream, restart it, check the committed output.

    python bench/spikes/eos_kill.py BOOTSTRAP [--records N] [--kills K] [--wipe-on 2]

Every input has a unique seq. Passing means: each seq appears exactly once in the
read_committed output, and each key's counts are exactly 1..n (the RocksDB table recovered
to the committed state, also after its local directory was deleted).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

HERE = Path(__file__).resolve().parent


async def create_topics(bootstrap: str, spike_id: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics(
        [NewTopic(f"{spike_id}.{name}", partitions, 1) for name in ("input", "control", "output")]
    )
    await admin.close()


async def produce_inputs(bootstrap: str, spike_id: str, records: int, keys: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    futures = [
        await producer.send(
            f"{spike_id}.input", key=f"k{seq % keys}".encode(), value=orjson.dumps({"seq": seq})
        )
        for seq in range(records)
    ]
    await asyncio.gather(*futures)
    await producer.stop()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    if env["SPIKE_IMPL"] == "faust":
        command = [
            sys.executable,
            str(HERE / "spike_app.py"),
            "worker",
            "-l",
            "warn",
            "--without-web",
        ]
    else:
        command = [sys.executable, str(HERE / "own_loop.py")]
    with log.open("ab") as sink:
        return subprocess.Popen(
            command,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def run(args: argparse.Namespace) -> bool:
    spike_id = f"eos-{args.impl}-{uuid.uuid4().hex[:6]}"
    datadir = Path(f"/tmp/spike-data-{spike_id}")
    log = Path(f"/tmp/spike-{spike_id}.log")
    env = {
        **os.environ,
        "SPIKE_BOOTSTRAP": args.bootstrap,
        "SPIKE_ID": spike_id,
        "SPIKE_IMPL": args.impl,
        "SPIKE_PARTITIONS": str(args.partitions),
        "SPIKE_DATADIR": str(datadir),
        "SPIKE_COMMIT_INTERVAL": os.environ.get("SPIKE_COMMIT_INTERVAL", "1.0"),
        "SPIKE_COMMIT_EVERY": os.environ.get("SPIKE_COMMIT_EVERY", "10000"),
    }
    await create_topics(args.bootstrap, spike_id, args.partitions)
    await produce_inputs(args.bootstrap, spike_id, args.records, args.keys)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    parts = [TopicPartition(f"{spike_id}.output", p) for p in range(args.partitions)]
    consumer.assign(parts)
    await consumer.seek_to_beginning(*parts)
    seen: Counter[int] = Counter()
    phases: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    counts_by_key: dict[str, list[int]] = defaultdict(list)
    worker = start_worker(env, log)
    kill_points = [args.records * (i + 1) // (args.kills + 1) for i in range(args.kills)]
    kills_done = 0
    started = time.monotonic()
    last_progress = time.monotonic()
    while time.monotonic() - last_progress < 60:
        batches = await consumer.getmany(timeout_ms=500)
        for messages in batches.values():
            for message in messages:
                body = orjson.loads(message.value)
                seen[body["seq"]] += 1
                phases[body["seq"]].append((kills_done, message.partition, message.offset))
                counts_by_key[body["key"]].append(body["count"])
                last_progress = time.monotonic()
        if kills_done < len(kill_points) and len(seen) >= kill_points[kills_done]:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            kills_done += 1
            wiped = kills_done == args.wipe_on
            if wiped:
                shutil.rmtree(datadir, ignore_errors=True)
            print(f"  kill -9 #{kills_done} at {len(seen)} outputs (wiped rocksdb: {wiped})")
            worker = start_worker(env, log)
        if len(seen) >= args.records and kills_done == len(kill_points):
            # Linger a little: a repeat would show up after the last original.
            await asyncio.sleep(3)
            batches = await consumer.getmany(timeout_ms=1000)
            for messages in batches.values():
                for message in messages:
                    body = orjson.loads(message.value)
                    seen[body["seq"]] += 1
                    counts_by_key[body["key"]].append(body["count"])
            break
    elapsed = time.monotonic() - started
    await consumer.stop()
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
    missing = args.records - len(seen)
    repeated = sum(1 for n in seen.values() if n > 1)
    bad_keys = [
        key
        for key, counts in counts_by_key.items()
        if sorted(counts) != list(range(1, len(counts) + 1))
    ]
    repeats = [(seq, phases[seq]) for seq, n in sorted(seen.items()) if n > 1]
    for seq, where in repeats[:5] + repeats[-3:]:
        print(f"  repeated seq {seq}: (phase, partition, offset) {where}")
    print("  repeats by phase:", Counter(w[-1][0] for _, w in repeats))
    ok = missing == 0 and repeated == 0 and not bad_keys
    print(
        f"{spike_id}: {len(seen)}/{args.records} seqs, missing {missing}, repeated {repeated}, "
        f"keys with broken counts {len(bad_keys)}, {kills_done} kills, {elapsed:.1f}s -> "
        f"{'PASS' if ok else 'FAIL'} (log {log})"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("--impl", choices=("faust", "own"), default="faust")
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument(
        "--wipe-on", type=int, default=2, help="delete the RocksDB dir at this kill"
    )
    args = parser.parse_args()
    sys.exit(0 if asyncio.run(run(args)) else 1)


if __name__ == "__main__":
    main()
