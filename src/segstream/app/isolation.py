"""No record stops a partition: a failed batch is rolled back and run again without what
failed it (SPEC §3.3, `internal`).

- A record whose parsing or applying raised (`RecordFailed`) is dead-lettered as `internal`
  with the reason, and the batch runs again without it.
- A timer or backfill step that raised for one profile (`ProfileProcessingError`) is dropped for
  that profile (logged and counted), and the batch runs again.
- A record the broker rejected (`SendRejected`: a changelog state or an output too large, or
  invalid) was produced by some record of the batch: the batch is cut in halves, each its own
  transaction, until the one record is found; it is dead-lettered as `internal`. Its dead
  letter rejected too: dead-lettered without its value; that rejected as well: skipped, counted.
  In a tick (no records) the rejected record's key names the profile, whose step is dropped.

Anything else (the broker away, fencing, timeouts) is not a record's fault: it propagates, and
the worker suspends the task and fetches the batch again from the committed offsets.
Every retry first renews the task's producer (the aborted transaction, and the sequence numbers
a rejected record leaves, go with the old one); the rollback has put the state back.
"""

from __future__ import annotations

import logging
from typing import Any

from segstream.app.collector import Rejected, SendRejected
from segstream.app.task import Isolation, PartitionTask, RecordFailed, RecordKey, record_key
from segstream.errors import ProfileProcessingError
from segstream.state.layout import profile_of_key

__all__ = ["IsolationExhausted", "run_batch"]

log = logging.getLogger("segstream.isolation")

Batch = list[tuple[Any, list[Any]]]

#: Retries of one batch beyond one per record: each isolates a record or drops a profile's
#: step, so a batch needs at most as many; this bounds a defect that would loop anyway.
_EXTRA_RETRIES = 64


class IsolationExhausted(RuntimeError):
    """A batch kept failing after every record and profile step it could blame was isolated."""


async def run_batch(task: PartitionTask, batch: Batch) -> None:
    """Process `batch` on `task`, isolating records and profile steps that fail it."""
    await _run(task, batch, {})


async def _run(task: PartitionTask, batch: Batch, isolated: dict[RecordKey, Isolation]) -> None:
    records = [m for _, messages in batch for m in messages]
    for _attempt in range(len(records) + _EXTRA_RETRIES):
        try:
            await task.process(batch, isolated)
            return
        except RecordFailed as exc:
            log.error("partition %d: record isolated: %s", task.partition, exc)
            isolated[exc.key] = Isolation(exc.reason)
            task.metrics.batch_retry("record")
        except ProfileProcessingError as exc:
            task.quarantine(exc)
            task.metrics.batch_retry("profile")
        except SendRejected as exc:
            task.metrics.batch_retry("rejected")
            if await _rejected(task, batch, records, isolated, exc):
                return
        await task.renew_producer()
    raise IsolationExhausted(f"partition {task.partition}: the batch still fails")


async def _rejected(
    task: PartitionTask,
    batch: Batch,
    records: list[Any],
    isolated: dict[RecordKey, Isolation],
    exc: SendRejected,
) -> bool:
    """Act on a rejection; True when the batch was done (by halves) here."""
    # The broker refuses a whole produce batch: with several records refused, the largest is
    # the likely cause, but only a batch of one record proves which record produced it.
    profiles = list(dict.fromkeys(p for r in exc.rejected if (p := _rejected_profile(task, r))))
    if not records:
        if not profiles:
            raise IsolationExhausted(
                f"partition {task.partition}: a tick's record was rejected: {exc}"
            ) from exc
        task.quarantine(ProfileProcessingError(profiles[0], "timer", exc))
        return False
    if len(exc.rejected) == 1:
        profile_id = profiles[0] if profiles else None
        # Only a record of that profile (or one of its timers) writes its state or its
        # transitions: with one such record, that is the one; with none, a timer.
        suspects = (
            [m for m in records if m.key == profile_id.encode()]
            if profile_id is not None
            else records
        )
        live = [m for m in suspects if record_key(m) not in isolated]
        if profile_id is not None and not live:
            task.quarantine(ProfileProcessingError(profile_id, "timer", exc))
            return False
        if len(suspects) == 1:
            _isolate(task, isolated, suspects[0], exc)
            return False
    elif len(records) == 1:
        own = (records[0].key or b"").decode(errors="replace")
        others = [p for p in profiles if p != own]
        if others:
            # A timer of another profile fired in this batch and wrote that: drop it first.
            task.quarantine(ProfileProcessingError(others[0], "timer", exc))
        else:
            _isolate(task, isolated, records[0], exc)
        return False
    await task.renew_producer()
    first, second = _halves(batch)
    await _run(task, first, isolated)
    await _run(task, second, isolated)
    return True


def _isolate(
    task: PartitionTask, isolated: dict[RecordKey, Isolation], message: Any, exc: SendRejected
) -> None:
    key = record_key(message)
    isolated[key] = _worsen(isolated.get(key), exc)
    log.error("partition %d: record isolated: %s", task.partition, exc)


def _worsen(current: Isolation | None, exc: SendRejected) -> Isolation:
    """The next fallback for a record whose batch the broker rejected."""
    what = {
        "changelog": "the profile state it produced",
        "membership": "a membership event it produced",
        "members": "a current-membership record it produced",
        "deadletter": "its dead letter",
    }
    reason = f"{what.get(exc.kind, 'a record it produced')} was rejected by the broker ({exc})"[
        :1000
    ]
    if current is None:
        return Isolation(reason)
    if current.keep_value:
        return Isolation(current.reason, keep_value=False)
    return Isolation(current.reason, keep_value=False, skip=True)


def _rejected_profile(task: PartitionTask, rejected: Rejected) -> str | None:
    """The profile whose state (changelog) or transition (membership) was rejected."""
    key = rejected.key or b""
    if rejected.kind == "changelog" and (profile := profile_of_key(key)) is not None:
        return profile
    if rejected.kind == "membership" and key:
        return key.decode(errors="replace")
    if rejected.kind == "members" and b"/" in key:  # segment_id/profile_id
        return key.partition(b"/")[2].decode(errors="replace")
    return None


def _halves(batch: Batch) -> tuple[Batch, Batch]:
    """The batch's records cut in two, each half keeping the per-topic-partition order."""
    flat = [(tp, m) for tp, messages in batch for m in messages]
    middle = len(flat) // 2
    return _regroup(flat[:middle]), _regroup(flat[middle:])


def _regroup(flat: list[tuple[Any, Any]]) -> Batch:
    """Consecutive records of one topic-partition as one group: a batch of several fetches
    holds a topic-partition more than once, and its order across topics stays as it was."""
    grouped: Batch = []
    for tp, message in flat:
        if grouped and grouped[-1][0] == tp:
            grouped[-1][1].append(message)
        else:
            grouped.append((tp, [message]))
    return grouped
