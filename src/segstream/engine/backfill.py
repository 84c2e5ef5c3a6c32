"""Backfills that run in slices: a queue of segment changes, each with a cursor over profile ids.

A partition evaluates its profiles for a new segment version in key order, a batch at a time
between events. The cursor (last profile id done) lives in the partition's state, so a crash
resumes where the last committed batch stopped. A profile that receives a record before the
cursor reaches it is caught up first, so it sees the change exactly as if the backfill had
reached it; evaluating a profile twice for the same change emits nothing the second time.

A job remembers, in memory, the profiles `catch_up` evaluated ahead of its cursor (at most
CAUGHT_UP_KEPT), and the cursor passes over them: while a backfill is far behind, most live
events reach profiles ahead of it, and each would otherwise be evaluated twice. From the
catch-up on, the profile is exactly as if the cursor had evaluated it (its timers for the
segment are scheduled, later records see the installed version), so the second evaluation
could change nothing. The set is not stored: a crash or a rolled-back transaction (which
decodes the queue from its stored bytes) only costs those profiles their second evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field

from segstream.engine.membership import MembershipChange
from segstream.engine.processor import SegmentEngine
from segstream.errors import ProfileProcessingError
from segstream.schemas.jsontext import dumps, loads_exact

__all__ = ["CAUGHT_UP_KEPT", "BackfillJob", "BackfillQueue"]

#: Profiles caught up ahead of its cursor a job remembers (about 100 bytes each).
CAUGHT_UP_KEPT = 100_000


@dataclass(slots=True)
class BackfillJob:
    """One segment change still being evaluated over a partition's profiles."""

    segment_id: str
    kind: str  # segment_created | segment_updated | segment_deleted
    version: int
    cursor: str | None = None  # last profile id done, in key order
    done: int = 0
    total: int = 0  # profiles in the partition when the change arrived
    #: Profiles ahead of the cursor `catch_up` evaluated already (memory only).
    caught_up: set[str] = field(default_factory=set, compare=False, repr=False)

    def covers(self, profile_id: str) -> bool:
        """True when the job has already passed this profile."""
        return self.cursor is not None and profile_id <= self.cursor

    def apply(self, engine: SegmentEngine, profile_id: str, now: int) -> list[MembershipChange]:
        """Evaluate one profile for this change (idempotent)."""
        if self.kind == "segment_deleted":
            return engine.leave_deleted(profile_id, self.segment_id, self.version, now)
        return engine.backfill_profile(profile_id, self.segment_id, self.kind, now)


#: A job's own walk of profile ids after a cursor (an index's), or None: every profile.
Walk = Callable[[str | None, int], list[str]]


class BackfillQueue:
    """The partition's pending backfills, oldest first.

    `indexing` (memory only, set by the shell) says that a build pass of its guard index
    wants the backfills' slices too: the queue is then true without a job, so the worker
    gives the partition slices under the same live-first rules (`segstream.app.task`)."""

    def __init__(self, jobs: Iterable[BackfillJob] = ()) -> None:
        self.jobs: list[BackfillJob] = list(jobs)
        self.indexing = False

    def __bool__(self) -> bool:
        return bool(self.jobs) or self.indexing

    def add(self, job: BackfillJob) -> None:
        """Queue a change; a newer change of the same segment keeps its own pass."""
        self.jobs.append(job)

    def catch_up(self, engine: SegmentEngine, profile_id: str, now: int) -> list[MembershipChange]:
        """Apply every pending change that has not reached this profile yet, in order."""
        changes: list[MembershipChange] = []
        for job in self.jobs:
            if not job.covers(profile_id):
                changes.extend(job.apply(engine, profile_id, now))
                if len(job.caught_up) < CAUGHT_UP_KEPT:
                    job.caught_up.add(profile_id)
        return changes

    def advance(
        self,
        engine: SegmentEngine,
        profiles_after: Callable[[str | None, int], list[str]],
        budget: int,
        now: int,
        skip: Container[str] = (),
        walk_of: Callable[[BackfillJob], Walk | None] | None = None,
    ) -> list[MembershipChange]:
        """Evaluate up to `budget` profiles (in key order) of the oldest jobs; finished jobs
        leave the queue. Profiles in `skip` (whose evaluation failed before) and those the
        job caught up already are passed over.

        `walk_of` may give a job a walk of its own: the profiles in key order that the
        change can move (an index's, by the same profile-id cursor), every other profile
        after the cursor being one its evaluation leaves as it is. The cursor stays a profile
        id, so a job may change walks between slices (an index built meanwhile)."""
        changes: list[MembershipChange] = []
        while self.jobs and budget > 0:
            job = self.jobs[0]
            walk = walk_of(job) if walk_of is not None else None
            batch = (walk or profiles_after)(job.cursor, budget)
            caught_up = job.caught_up
            for profile_id in batch:
                if profile_id in skip:
                    continue
                if caught_up and profile_id in caught_up:
                    caught_up.discard(profile_id)
                    continue
                try:
                    changes.extend(job.apply(engine, profile_id, now))
                except Exception as exc:
                    raise ProfileProcessingError(profile_id, "backfill", exc) from exc
            if batch:
                job.cursor = batch[-1]
                job.done += len(batch)
            if len(batch) < budget:  # the partition has no profile after the cursor
                self.jobs.pop(0)
            budget -= len(batch)
        return changes

    def pending(self, segment_id: str) -> BackfillJob | None:
        """The first pending job of a segment, if any."""
        return next((j for j in self.jobs if j.segment_id == segment_id), None)

    def encode(self) -> bytes:
        """Bytes for the partition's state."""
        return dumps(
            [
                {
                    "segment_id": job.segment_id,
                    "kind": job.kind,
                    "version": job.version,
                    "cursor": job.cursor,
                    "done": job.done,
                    "total": job.total,
                }
                for job in self.jobs
            ]
        )

    @classmethod
    def decode(cls, data: bytes | None) -> BackfillQueue:
        """The queue `encode` wrote (empty for None)."""
        return cls(BackfillJob(**job) for job in loads_exact(data)) if data else cls()
