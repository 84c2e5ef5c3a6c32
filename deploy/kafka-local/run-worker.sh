#!/usr/bin/env bash
# `make run`: the local broker (unless SEGSTREAM_KAFKA_BOOTSTRAP names one), the topics, and
# `segstream worker` in the foreground. Ctrl-C stops the worker, then the broker it started.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
segstream="${SEGSTREAM_BIN:-$repo_root/.venv/bin/segstream}"
kafka=("$here/kafka.sh")

started_broker=0
worker_pid=""

cleanup() {
    trap - INT TERM EXIT
    if [[ -n "$worker_pid" ]] && kill -0 "$worker_pid" 2>/dev/null; then
        kill -TERM "$worker_pid" 2>/dev/null || true
        wait "$worker_pid" 2>/dev/null || true
    fi
    if ((started_broker)); then
        "${kafka[@]}" stop || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${SEGSTREAM_KAFKA_BOOTSTRAP:-}" ]]; then
    # A broker that was already running (make kafka-start) is left running afterwards.
    if ! "${kafka[@]}" status >/dev/null 2>&1; then
        started_broker=1
    fi
    SEGSTREAM_KAFKA_BOOTSTRAP="$("${kafka[@]}" start)"
    export SEGSTREAM_KAFKA_BOOTSTRAP
fi
echo "run-worker.sh: broker $SEGSTREAM_KAFKA_BOOTSTRAP" >&2

"$segstream" worker --create-topics-only
# In the background so that this shell keeps its signal traps while the worker runs.
"$segstream" worker &
worker_pid=$!
wait "$worker_pid"
