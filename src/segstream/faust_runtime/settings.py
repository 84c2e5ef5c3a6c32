"""Settings of the Faust runtime: the worker's `SEGSTREAM_*` settings plus the few of its own."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from segstream.app.settings import SettingsError, WorkerSettings

__all__ = ["FaustSettings"]


@dataclass(frozen=True)
class FaustSettings:
    """What `segstream worker --runtime faust` runs with (docs/faust.md, "Settings")."""

    worker: WorkerSettings
    #: The Faust app id: its consumer group and the prefix of its table changelogs
    #: (`<id>-profiles-changelog`, `<id>-meta-changelog`). Not the native worker's group.
    app_id: str
    #: Tick records and segment control records, co-partitioned with the inputs.
    control_topic: str
    #: How often Faust commits the offsets of processed records (broker_commit_interval).
    commit_interval_s: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FaustSettings:
        """Read `SEGSTREAM_*` (as the native worker does) and `SEGSTREAM_FAUST_*`."""
        env = os.environ if environ is None else environ
        worker = WorkerSettings.from_env(env)
        if worker.security.protocol != "PLAINTEXT":
            # Faust's own clients would need its broker_credentials wired up (not done): a
            # worker that reads with credentials and writes without would be half secured.
            raise SettingsError(
                "the Faust runtime speaks PLAINTEXT only (SEGSTREAM_SECURITY_PROTOCOL is "
                f"{worker.security.protocol}); use the native runtime (docs/faust.md)"
            )
        prefix = env.get("SEGSTREAM_TOPIC_PREFIX", "segstream")
        text = env.get("SEGSTREAM_FAUST_COMMIT_INTERVAL_S", "1")
        try:
            commit_interval = float(text)
        except ValueError:
            raise SettingsError(
                f"SEGSTREAM_FAUST_COMMIT_INTERVAL_S must be a number of seconds, not {text!r}"
            ) from None
        if not 0 < commit_interval <= 60:
            raise SettingsError("SEGSTREAM_FAUST_COMMIT_INTERVAL_S must be in (0, 60]")
        return cls(
            worker=worker,
            app_id=env.get("SEGSTREAM_FAUST_APP_ID", f"{worker.app_id}-faust"),
            control_topic=env.get("SEGSTREAM_FAUST_TOPIC_CONTROL", f"{prefix}.faust-control"),
            commit_interval_s=commit_interval,
        )

    @property
    def changelogs(self) -> tuple[str, str]:
        """The changelog topics Faust keeps for the two tables."""
        return (f"{self.app_id}-profiles-changelog", f"{self.app_id}-meta-changelog")
