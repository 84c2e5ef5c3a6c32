#!/usr/bin/env bash
# `make run`: the product end to end on one machine.
#
#   1. the local broker (unless SEGSTREAM_KAFKA_BOOTSTRAP names one) and the topics;
#   2. `segstream worker` in the background (log: .run/worker.log);
#   3. the demo segments (deploy/demo/segments.json) through `segstream segments apply`;
#   4. a live workload (2,000 profiles, 200 records/s) generated into .run/demo and sent by
#      `segstream produce` in the background (log: .run/produce.log);
#   5. `segstream tail --counts` in the foreground: membership changes as they happen.
#
# Ctrl-C stops everything this script started: tail, producer, worker, and the broker if it
# was not running before. Environment: SEGSTREAM_* as for the worker, plus
#   SEGSTREAM_BIN       the segstream executable (default: .venv/bin/segstream)
#   SEGSTREAM_RUN_DIR   logs and the generated workload (default: <repo>/.run)
#   DEMO_PROFILES, DEMO_EVENTS, DEMO_RATE   the workload's size and pace (2000, 200000, 200)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
segstream="${SEGSTREAM_BIN:-$repo_root/.venv/bin/segstream}"
kafka=("$here/kafka.sh")
run_dir="${SEGSTREAM_RUN_DIR:-$repo_root/.run}"
profiles="${DEMO_PROFILES:-2000}"
events="${DEMO_EVENTS:-200000}"
rate="${DEMO_RATE:-200}"
# How long a process may take to stop after SIGTERM before it is killed.
stop_grace_s=20

started_broker=0
background=()  # pids of the background processes started here

say() { echo "run-worker.sh: $*" >&2; }

stop_process() {
    local pid=$1 waited=0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && ((waited < stop_grace_s * 10)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "process $pid did not stop in ${stop_grace_s}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    trap - INT TERM EXIT
    # The newest first: the producer stops feeding before the worker stops.
    local i
    for ((i = ${#background[@]} - 1; i >= 0; i--)); do
        stop_process "${background[i]}"
    done
    if ((started_broker)); then
        "${kafka[@]}" stop || true
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$run_dir"
# The worker's RocksDB stores beside the logs, wherever the script is run from.
export SEGSTREAM_STORE_DIR="${SEGSTREAM_STORE_DIR:-$run_dir/store}"

if [[ -z "${SEGSTREAM_KAFKA_BOOTSTRAP:-}" ]]; then
    # A broker that was already running (make kafka-start) is left running afterwards.
    if ! "${kafka[@]}" status >/dev/null 2>&1; then
        started_broker=1
    fi
    SEGSTREAM_KAFKA_BOOTSTRAP="$("${kafka[@]}" start)"
    export SEGSTREAM_KAFKA_BOOTSTRAP
fi
say "broker $SEGSTREAM_KAFKA_BOOTSTRAP"

"$segstream" worker --create-topics-only

# Background processes ignore Ctrl-C (no job control in a script): cleanup stops them.
"$segstream" worker >"$run_dir/worker.log" 2>&1 &
background+=($!)
say "worker started (pid $!, log $run_dir/worker.log)"

say "applying deploy/demo/segments.json"
"$segstream" segments apply "$repo_root/deploy/demo/segments.json"

say "generating a live workload: $profiles profiles, $events records at $rate/s"
"$segstream" generate --live --profiles "$profiles" --events "$events" --segments 0 \
    --rate "$rate" --out "$run_dir/demo"

"$segstream" produce "$run_dir/demo/events.jsonl" --rate "$rate" >"$run_dir/produce.log" 2>&1 &
background+=($!)
say "producer started (pid $!, log $run_dir/produce.log)"
say "membership changes follow; elsewhere try: $segstream segments list   (Ctrl-C stops all)"

"$segstream" tail --counts
