"""Worker settings read from `SEGSTREAM_*` environment variables."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segstream.timefmt import parse_duration

__all__ = ["MIB", "KafkaSecurity", "SettingsError", "TopicNames", "WorkerSettings"]

MIB = 1024 * 1024
#: Room for a dead letter's headers (SPEC §7) above the original record's size.
DEADLETTER_HEADROOM = 64 * 1024
PREFIX = "SEGSTREAM_"


class SettingsError(ValueError):
    """An environment variable holds a value the worker cannot use."""


@dataclass(frozen=True)
class TopicNames:
    """The five topics of SPEC §2 and the worker's internal ones (same prefix)."""

    profiles: str
    activity: str
    segments: str
    membership: str
    deadletter: str
    #: Segment-version changes for each partition, co-partitioned with the inputs.
    control: str
    #: Compacted changelog of the partition stores, co-partitioned with the inputs.
    changelog: str
    #: Compacted, one partition: each input partition's segment versions, backfill progress
    #: and member counts, for `segstream segments list` and the API.
    status: str

    @property
    def inputs(self) -> tuple[str, str]:
        """The two input topics, which are co-partitioned."""
        return (self.profiles, self.activity)


@dataclass(frozen=True)
class KafkaSecurity:
    """How clients authenticate to the brokers (PLAINTEXT, SSL/mTLS, SASL_SSL with SCRAM)."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            kwargs["ssl_context"] = create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
            )
        if self.protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism or "SCRAM-SHA-512"
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs


@dataclass(frozen=True)
class WorkerSettings:
    """Everything the worker needs to know about its environment, with development defaults."""

    bootstrap: str
    security: KafkaSecurity
    app_id: str
    worker_id: str
    topics: TopicNames
    input_partitions: int
    replication_factor: int
    history_retention: int  # microseconds
    store_dir: Path
    web_host: str
    web_port: int
    web_enabled: bool
    # RocksDB's default block cache is large per DB, and a worker opens one DB per partition.
    rocksdb_block_cache_bytes: int
    rocksdb_write_buffer_bytes: int
    input_max_message_bytes: int
    #: `max.message.bytes` of the changelog topic: the largest profile state a partition can
    #: write (a record whose state would be larger is dead-lettered as `internal`).
    changelog_max_message_bytes: int
    # Group timing; tests turn these down so a worker joins and rebalances quickly.
    session_timeout_s: float
    heartbeat_interval_s: float
    #: How often each owned partition gets a tick (timers and backfill batches run on it).
    tick_interval_s: float
    #: Profiles a backfill evaluates per batch between events.
    backfill_batch: int
    #: Most records one partition transaction takes.
    max_batch_records: int
    log_level: str
    #: The URL peers use to reach this worker's HTTP API (None: the bound http://host:port).
    web_advertise: str | None = None
    #: Bearer token the HTTP API requires for mutating endpoints (None: no token needed).
    api_token: str | None = None
    #: Largest request body the HTTP API reads.
    api_max_body_bytes: int = 256 * 1024
    #: Origins allowed by CORS (empty: CORS off).
    api_cors_origins: tuple[str, ...] = ()

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
            control=reader.text("TOPIC_CONTROL", f"{prefix}.control"),
            changelog=reader.text("TOPIC_CHANGELOG", f"{prefix}.state-changelog"),
            status=reader.text("TOPIC_STATUS", f"{prefix}.status"),
        )
        max_message_bytes = reader.integer("INPUT_MAX_MESSAGE_BYTES", 2 * MIB + 64 * 1024)
        if max_message_bytes < 2 * MIB:
            # SPEC §2: an oversize record must reach the worker to be dead-lettered.
            raise SettingsError(f"{PREFIX}INPUT_MAX_MESSAGE_BYTES must be at least {2 * MIB}")
        changelog_max = reader.integer("CHANGELOG_MAX_MESSAGE_BYTES", 8 * MIB, minimum=MIB)
        protocol = reader.text("SECURITY_PROTOCOL", "PLAINTEXT").upper()
        if protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise SettingsError(
                f"{PREFIX}SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
            )
        security = KafkaSecurity(
            protocol=protocol,
            sasl_mechanism=reader.optional("SASL_MECHANISM"),
            sasl_username=reader.optional("SASL_USERNAME"),
            sasl_password=reader.optional("SASL_PASSWORD"),
            ssl_cafile=reader.optional("SSL_CAFILE"),
            ssl_certfile=reader.optional("SSL_CERTFILE"),
            ssl_keyfile=reader.optional("SSL_KEYFILE"),
        )
        retention_text = reader.text("HISTORY_RETENTION", "365d")
        try:
            retention = parse_duration(retention_text)
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}HISTORY_RETENTION: {exc}") from None
        return cls(
            bootstrap=reader.text("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            security=security,
            app_id=reader.text("APP_ID", prefix),
            worker_id=reader.text("WORKER_ID", f"{socket.gethostname()}-{os.getpid()}"),
            topics=topics,
            input_partitions=reader.integer("PARTITIONS", 4, minimum=1),
            replication_factor=reader.integer("REPLICATION_FACTOR", 1, minimum=1),
            history_retention=retention,
            store_dir=Path(reader.text("STORE_DIR", ".run/store")),
            web_host=reader.text("WEB_HOST", "127.0.0.1"),
            web_port=reader.integer("WEB_PORT", 6066, minimum=0),
            web_enabled=reader.flag("WEB_ENABLED", default=True),
            rocksdb_block_cache_bytes=reader.integer("ROCKSDB_BLOCK_CACHE_BYTES", 8 * MIB),
            rocksdb_write_buffer_bytes=reader.integer("ROCKSDB_WRITE_BUFFER_BYTES", 8 * MIB),
            input_max_message_bytes=max_message_bytes,
            changelog_max_message_bytes=changelog_max,
            session_timeout_s=reader.seconds("SESSION_TIMEOUT_S", 30.0),
            heartbeat_interval_s=reader.seconds("HEARTBEAT_INTERVAL_S", 3.0),
            tick_interval_s=reader.seconds("TICK_INTERVAL_S", 0.25),
            backfill_batch=reader.integer("BACKFILL_BATCH", 2000, minimum=1),
            max_batch_records=reader.integer("MAX_BATCH_RECORDS", 2000, minimum=1),
            log_level=reader.text("LOG_LEVEL", "info"),
            web_advertise=reader.optional("WEB_ADVERTISE"),
            api_token=reader.optional("API_TOKEN"),
            api_max_body_bytes=reader.integer("API_MAX_BODY_BYTES", 256 * 1024, minimum=1024),
            api_cors_origins=tuple(
                o.strip() for o in reader.text("API_CORS_ORIGINS", "").split(",") if o.strip()
            ),
        )

    def client_kwargs(self) -> dict[str, Any]:
        """bootstrap_servers plus the security settings, for any aiokafka client."""
        return {"bootstrap_servers": self.bootstrap, **self.security.client_kwargs()}

    @property
    def deadletter_max_message_bytes(self) -> int:
        """`max.message.bytes` of the dead-letter topic: a dead letter is the original record
        (at most the input topics' limit) plus the SPEC §7 headers."""
        return self.input_max_message_bytes + DEADLETTER_HEADROOM

    @property
    def producer_max_request_bytes(self) -> int:
        """The partition producers' `max_request_size`: room for the largest record they
        may write to any of their topics."""
        return max(self.changelog_max_message_bytes, self.deadletter_max_message_bytes) + (
            64 * 1024
        )


@dataclass(frozen=True)
class _EnvReader:
    """Typed reads of `SEGSTREAM_*` variables with errors that name the variable."""

    env: Mapping[str, str]

    def optional(self, name: str) -> str | None:
        value = self.env.get(PREFIX + name, "").strip()
        return value or None

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
