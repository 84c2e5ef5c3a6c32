"""Worker settings read from `SEGSTREAM_*` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MIB", "SettingsError", "TopicNames", "WorkerSettings"]

MIB = 1024 * 1024
PREFIX = "SEGSTREAM_"


class SettingsError(ValueError):
    """An environment variable holds a value the worker cannot use."""


@dataclass(frozen=True)
class TopicNames:
    """The names of the five topics of SPEC §2."""

    profiles: str
    activity: str
    segments: str
    membership: str
    deadletter: str

    @property
    def inputs(self) -> tuple[str, str]:
        """The two input topics, which are co-partitioned."""
        return (self.profiles, self.activity)


@dataclass(frozen=True)
class WorkerSettings:
    """Everything the worker needs to know about its environment, with development defaults."""

    bootstrap: str
    app_id: str
    topics: TopicNames
    input_partitions: int
    store_dir: Path
    web_port: int
    web_enabled: bool
    processing_guarantee: str
    # faust's RocksDB default is a 2 GiB block cache per partition DB; a worker holds many.
    rocksdb_block_cache_bytes: int
    input_max_message_bytes: int
    # Group and commit timing; tests turn these down so a worker joins and commits quickly.
    session_timeout_s: float
    heartbeat_interval_s: float
    commit_interval_s: float
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        """Settings from `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ
        reader = _EnvReader(env)
        prefix = reader.text("TOPIC_PREFIX", "segstream")
        topics = TopicNames(
            profiles=reader.text("TOPIC_PROFILES", f"{prefix}.profiles"),
            activity=reader.text("TOPIC_ACTIVITY", f"{prefix}.activity"),
            segments=reader.text("TOPIC_SEGMENTS", f"{prefix}.segments"),
            membership=reader.text("TOPIC_MEMBERSHIP", f"{prefix}.membership"),
            deadletter=reader.text("TOPIC_DEADLETTER", f"{prefix}.deadletter"),
        )
        guarantee = reader.text("PROCESSING_GUARANTEE", "exactly_once")
        if guarantee not in ("exactly_once", "at_least_once"):
            raise SettingsError(
                f"{PREFIX}PROCESSING_GUARANTEE must be exactly_once or at_least_once, "
                f"not {guarantee!r}"
            )
        max_message_bytes = reader.integer("INPUT_MAX_MESSAGE_BYTES", 2 * MIB + 64 * 1024)
        if max_message_bytes < 2 * MIB:
            # SPEC §2: an oversize record must reach the worker to be dead-lettered.
            raise SettingsError(f"{PREFIX}INPUT_MAX_MESSAGE_BYTES must be at least {2 * MIB}")
        return cls(
            bootstrap=reader.text("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            app_id=reader.text("APP_ID", prefix),
            topics=topics,
            input_partitions=reader.integer("PARTITIONS", 4, minimum=1),
            store_dir=Path(reader.text("STORE_DIR", ".run/store")),
            web_port=reader.integer("WEB_PORT", 6066, minimum=1),
            web_enabled=reader.flag("WEB_ENABLED", default=True),
            processing_guarantee=guarantee,
            rocksdb_block_cache_bytes=reader.integer("ROCKSDB_BLOCK_CACHE_BYTES", 8 * MIB),
            input_max_message_bytes=max_message_bytes,
            session_timeout_s=reader.seconds("SESSION_TIMEOUT_S", 30.0),
            heartbeat_interval_s=reader.seconds("HEARTBEAT_INTERVAL_S", 3.0),
            commit_interval_s=reader.seconds("COMMIT_INTERVAL_S", 1.0),
            log_level=reader.text("LOG_LEVEL", "info"),
        )

    @property
    def broker_url(self) -> str:
        """The bootstrap servers as faust's `kafka://` URL list."""
        return ";".join(f"kafka://{server.strip()}" for server in self.bootstrap.split(","))


@dataclass(frozen=True)
class _EnvReader:
    """Typed reads of `SEGSTREAM_*` variables with errors that name the variable."""

    env: Mapping[str, str]

    def text(self, name: str, default: str) -> str:
        value = self.env.get(PREFIX + name, "").strip()
        return value or default

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        raw = self.text(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name} must be an integer, not {raw!r}") from None
        if value < minimum:
            raise SettingsError(f"{PREFIX}{name} must be at least {minimum}, not {value}")
        return value

    def seconds(self, name: str, default: float) -> float:
        raw = self.text(name, str(default))
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(
                f"{PREFIX}{name} must be a number of seconds, not {raw!r}"
            ) from None
        if not value > 0:
            raise SettingsError(f"{PREFIX}{name} must be positive, not {raw!r}")
        return value

    def flag(self, name: str, *, default: bool) -> bool:
        raw = self.text(name, "1" if default else "0").lower()
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{PREFIX}{name} must be 1/0, true/false, yes/no or on/off")
