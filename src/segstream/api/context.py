"""What every API handler works with: the worker, the cluster view and the settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from segstream.api.cluster import ClusterView
from segstream.api.errors import ApiError
from segstream.api.limits import Slots
from segstream.api.local import WorkerView
from segstream.app.settings import WorkerSettings

__all__ = ["ApiContext"]


@dataclass
class ApiContext:
    """Shared state of the API handlers of one worker."""

    worker: WorkerView
    view: ClusterView
    settings: WorkerSettings
    #: This worker's own URL as peers know it (set once the web server is bound).
    self_url: str | None = None
    #: Previews this worker runs now: asked of it (`/api/...`) and for peers (`/internal/...`).
    previews: Slots = field(init=False)
    peer_previews: Slots = field(init=False)

    def __post_init__(self) -> None:
        self.previews = Slots(self.settings.api_max_previews)
        self.peer_previews = Slots(self.settings.api_max_previews)

    @contextmanager
    def preview_slot(self, slots: Slots) -> Iterator[None]:
        """Hold one of `slots` for a preview; 429 with Retry-After when all are taken."""
        if not slots.take():
            raise ApiError(
                429,
                "too_many_previews",
                f"this worker runs {slots.size} previews at once; retry shortly",
                headers={"Retry-After": "1"},
            )
        try:
            yield
        finally:
            slots.give_back()

    def is_local(self, partition: int) -> bool:
        """True when this worker serves the partition now."""
        owner = self.worker.partitions.get(partition)
        return owner is not None and owner.ready and owner.store is not None
