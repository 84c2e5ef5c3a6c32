"""What every API handler works with: the worker, the cluster view and the settings."""

from __future__ import annotations

from dataclasses import dataclass

from segstream.api.cluster import ClusterView
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

    def is_local(self, partition: int) -> bool:
        """True when this worker serves the partition now."""
        owner = self.worker.partitions.get(partition)
        return owner is not None and owner.ready and owner.store is not None
