"""The garbage collector of a worker process: rarer young collections, and the long-lived
objects of a partition (its compiled segment registry, indexes) frozen out of full ones.

CPython's cyclic collector runs a young collection every 700 allocations and, every 100 of
those, a full one over every tracked object. A worker allocates a few hundred objects per
event (parsed records, history entries, changelog keys) and holds hundreds of thousands for
good (1,000 compiled segments per partition, the profile cache), so the collector was about a
quarter of its CPU time (measured in-process: 2.7 s of 11.1 s for 50,000 events, see
docs/performance.md). Reference counting frees almost all of it anyway; the collector is only
for cycles. `tune()` makes young collections rarer, `settle()` collects once and freezes what
survives when a partition has opened, so full collections skip it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

__all__ = ["THRESHOLDS", "release", "settle", "timed", "tune", "untimed"]

#: Allocations between young collections, and young (then middle) collections between older
#: ones: (700, 10, 10) by default.
THRESHOLDS = (10_000, 20, 20)


def tune() -> None:
    """Set the worker's collector thresholds (once, at start)."""
    gc.set_threshold(*THRESHOLDS)


def timed(observe: Callable[[int, float], None]) -> Callable[[str, dict[str, Any]], None]:
    """Report every collection's generation and duration to `observe` (a full collection
    holds the event loop: its pauses are latency, `segstream_gc_pause_seconds`). Returns the
    callback, for `untimed`."""
    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            observe(int(info["generation"]), time.perf_counter() - started[0])

    gc.callbacks.append(callback)
    return callback


def settle() -> None:
    """Collect, then freeze every object that survived: they are never scanned again (they
    are still freed by reference counting; only a cycle among them would stay). Called when a
    partition has opened — its registry built and its store loaded — and no other is opening:
    a pause of a full collection, once per assignment. What an earlier `settle` froze is
    unfrozen first, so that a cycle of a partition closed since is collected now."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def release() -> None:
    """Unfreeze (partitions were revoked: what they held may be cycles now, for the next
    collection to free)."""
    gc.unfreeze()


def untimed(callback: Callable[[str, dict[str, Any]], None]) -> None:
    """Stop reporting to the callback `timed` returned."""
    if callback in gc.callbacks:
        gc.callbacks.remove(callback)
