"""Worker settings read from `SEGSTREAM_*` environment variables."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from segstream.timefmt import parse_duration

__all__ = [
    "MIB",
    "OUTPUT_COMPRESSIONS",
    "KafkaSecurity",
    "SettingsError",
    "TopicNames",
    "WorkerSettings",
    "is_loopback",
]

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
    #: Compacted, one partition: webhook destinations (docs/destinations.md).
    destinations: str = "segstream.destinations"
    #: Batches `segstream deliver` gave up on, keyed by destination id.
    destination_deadletter: str = "segstream.destination-deadletter"
    #: Compacted, co-partitioned with the inputs: who is in each segment now (SPEC §6.1).
    members: str = "segstream.members"

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
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def failure_hint(self) -> str:
        """What to check when the brokers refuse this client (appended to the error)."""
        if self.protocol.startswith("SASL"):
            return (
                f" (the brokers may have refused the credentials: check {PREFIX}SASL_USERNAME, "
                f"{PREFIX}SASL_PASSWORD and {PREFIX}SASL_MECHANISM"
                + (f", and {PREFIX}SSL_CAFILE)" if self.protocol == "SASL_SSL" else ")")
            )
        if self.protocol == "SSL":
            return (
                f" (TLS may have failed: check {PREFIX}SSL_CAFILE and, where the brokers "
                f"require a client certificate, {PREFIX}SSL_CERTFILE and {PREFIX}SSL_KEYFILE)"
            )
        return ""

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
    #: `max.message.bytes` of the changelog topic: the largest changelog record (a profile's
    #: head or one stored event) a partition can write; a larger one is dead-lettered as
    #: `internal`.
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
    #: The most a SIGTERM's graceful stop may take (the batch in progress, closing the
    #: partitions, leaving the group...) before the worker leaves without the rest; under
    #: the 30 s that Compose and Kubernetes give by default before a SIGKILL.
    shutdown_timeout_s: float = 15.0
    #: The URL peers use to reach this worker's HTTP API (None: the bound http://host:port).
    web_advertise: str | None = None
    #: Bearer token every /api/... endpoint requires (None: no token needed, loopback only).
    api_token: str | None = field(default=None, repr=False)
    #: A second token that may only read (GET /api/... and preview); needs api_token.
    api_read_token: str | None = field(default=None, repr=False)
    #: The token workers send each other on /internal/... (None: derived from api_token).
    api_peer_token: str | None = field(default=None, repr=False)
    #: Largest request body the HTTP API reads.
    api_max_body_bytes: int = 256 * 1024
    #: Origins allowed by CORS, and to send writes (empty: CORS off, same-origin writes only).
    api_cors_origins: tuple[str, ...] = ()
    #: Host header values the API and the page answer (empty: the bound and advertised names).
    web_allowed_hosts: tuple[str, ...] = ()
    #: URL patterns a peer's advertised web URL must match to be called (empty: see peers.py).
    api_peer_urls: tuple[str, ...] = ()
    #: Previews this worker runs at once (each of /api/segments/preview and /internal/preview).
    api_max_previews: int = 2
    #: Serve the API on a non-loopback address without a token (never in production).
    web_insecure: bool = False
    #: Compression of what the partitions' producers write (membership, dead letters,
    #: changelog): None, or one of OUTPUT_COMPRESSIONS. Reading accepts every codec anyway.
    output_compression: str | None = None
    #: How long per-segment size history (hourly buckets) is kept (microseconds).
    size_history_retention: int = 30 * 24 * 3600 * 1_000_000
    #: Most seconds of evaluation one background slice (a backfill's step) takes: a live
    #: record waits for at most one slice and its transaction (docs/performance.md).
    backfill_slice_s: float = 0.05
    #: Share of the loop's time backfills get however busy live traffic keeps it (their
    #: minimum rate); idle time they take in full.
    backfill_min_share: float = 0.1
    #: How often a partition also commits its input positions to the consumer group (in a
    #: transaction; a value under a transaction's length: in every one). Positions are in the
    #: partition's state in every transaction, and a worker resumes from those: the group's
    #: offsets are for lag tools (docs/decisions/0002-input-positions-in-the-state.md).
    group_offsets_interval_s: float = 1.0
    #: Set by `segstream worker --processes N` for its child i (app/processes.py): i, shown
    #: as `"process"` on each of the child's log lines.
    process_index: int | None = None

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
            changelog=reader.text("TOPIC_CHANGELOG", f"{prefix}.state-changelog-v2"),
            status=reader.text("TOPIC_STATUS", f"{prefix}.status"),
            destinations=reader.text("TOPIC_DESTINATIONS", f"{prefix}.destinations"),
            destination_deadletter=reader.text(
                "TOPIC_DESTINATION_DEADLETTER", f"{prefix}.destination-deadletter"
            ),
            members=reader.text("TOPIC_MEMBERS", f"{prefix}.members"),
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
            sasl_password=reader.secret("SASL_PASSWORD"),
            ssl_cafile=reader.optional("SSL_CAFILE"),
            ssl_certfile=reader.optional("SSL_CERTFILE"),
            ssl_keyfile=reader.optional("SSL_KEYFILE"),
        )
        retention_text = reader.text("HISTORY_RETENTION", "365d")
        try:
            retention = parse_duration(retention_text)
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}HISTORY_RETENTION: {exc}") from None
        size_text = reader.text("SIZE_HISTORY_RETENTION", "30d")
        try:
            size_retention = parse_duration(size_text)
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}SIZE_HISTORY_RETENTION: {exc}") from None
        return cls(
            size_history_retention=size_retention,
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
            backfill_slice_s=reader.seconds("BACKFILL_SLICE_S", 0.05),
            backfill_min_share=reader.fraction("BACKFILL_MIN_SHARE", 0.1),
            group_offsets_interval_s=reader.seconds("GROUP_OFFSETS_INTERVAL_S", 1.0),
            log_level=reader.text("LOG_LEVEL", "info"),
            shutdown_timeout_s=reader.seconds("SHUTDOWN_TIMEOUT_S", 15.0),
            web_advertise=_advertised_url(reader.optional("WEB_ADVERTISE")),
            api_token=reader.secret("API_TOKEN"),
            api_read_token=reader.secret("API_READ_TOKEN"),
            api_peer_token=reader.secret("API_PEER_TOKEN"),
            api_max_body_bytes=reader.integer("API_MAX_BODY_BYTES", 256 * 1024, minimum=1024),
            api_cors_origins=reader.items("API_CORS_ORIGINS"),
            web_allowed_hosts=tuple(h.lower() for h in reader.items("WEB_ALLOWED_HOSTS")),
            api_peer_urls=reader.items("API_PEER_URLS"),
            api_max_previews=reader.integer("API_MAX_PREVIEWS", 2, minimum=1),
            web_insecure=reader.flag("WEB_INSECURE", default=False),
            output_compression=_compression(reader.text("OUTPUT_COMPRESSION", "none")),
            process_index=reader.integer("PROCESS_INDEX", 0) if "PROCESS_INDEX" in reader else None,
        )._checked()

    def _checked(self) -> WorkerSettings:
        tokens = [t for t in (self.api_token, self.api_read_token, self.api_peer_token) if t]
        if len(set(tokens)) != len(tokens):
            raise SettingsError(
                f"{PREFIX}API_TOKEN, {PREFIX}API_READ_TOKEN and {PREFIX}API_PEER_TOKEN "
                "must differ from each other"
            )
        if self.api_token is None and (self.api_read_token or self.api_peer_token):
            raise SettingsError(
                f"{PREFIX}API_READ_TOKEN and {PREFIX}API_PEER_TOKEN need {PREFIX}API_TOKEN"
            )
        return self

    @property
    def peer_token(self) -> str | None:
        """The token of /internal/... calls: API_PEER_TOKEN, else one derived from API_TOKEN."""
        if self.api_peer_token is not None:
            return self.api_peer_token
        if self.api_token is None:
            return None
        # Distinct from the client token, so a peer (or whoever poses as one) never gets it.
        return hmac.new(self.api_token.encode(), b"segstream peer v1", hashlib.sha256).hexdigest()

    def web_exposure_problem(self) -> str | None:
        """Why this worker must not serve its web port as configured (None: it may)."""
        if not self.web_enabled or self.api_token is not None or self.web_insecure:
            return None
        if is_loopback(self.web_host):
            return None
        return (
            f"{PREFIX}WEB_HOST={self.web_host} serves the API beyond this machine, so it needs "
            f"{PREFIX}API_TOKEN (or {PREFIX}API_TOKEN_FILE); set {PREFIX}WEB_INSECURE=1 only "
            "for a throwaway test setup"
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


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _advertised_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{PREFIX}WEB_ADVERTISE must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise SettingsError(f"{PREFIX}WEB_ADVERTISE must not carry a user or password")
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise SettingsError(f"{PREFIX}WEB_ADVERTISE is scheme://host:port, with no path")
    return url.rstrip("/")


#: The codecs Kafka supports, for SEGSTREAM_OUTPUT_COMPRESSION (besides `none`).
OUTPUT_COMPRESSIONS = ("gzip", "snappy", "lz4", "zstd")


def _compression(text: str) -> str | None:
    value = text.lower()
    if value == "none":
        return None
    if value not in OUTPUT_COMPRESSIONS:
        raise SettingsError(
            f"{PREFIX}OUTPUT_COMPRESSION must be none, {', '.join(OUTPUT_COMPRESSIONS)}; "
            f"not {text!r}"
        )
    return value


@dataclass(frozen=True)
class _EnvReader:
    """Typed reads of `SEGSTREAM_*` variables with errors that name the variable."""

    env: Mapping[str, str]

    def __contains__(self, name: str) -> bool:
        return bool(self.env.get(PREFIX + name, "").strip())

    def optional(self, name: str) -> str | None:
        value = self.env.get(PREFIX + name, "").strip()
        return value or None

    def secret(self, name: str) -> str | None:
        """A secret from NAME, or from the file NAME_FILE names (a mounted Secret)."""
        value = self.optional(name)
        path = self.optional(f"{name}_FILE")
        if value is not None and path is not None:
            raise SettingsError(f"set {PREFIX}{name} or {PREFIX}{name}_FILE, not both")
        if path is None:
            return value
        try:
            text = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(
                f"{PREFIX}{name}_FILE: cannot read {path}: {type(exc).__name__}"
            ) from None
        if not text:
            raise SettingsError(f"{PREFIX}{name}_FILE: {path} is empty")
        return text

    def items(self, name: str) -> tuple[str, ...]:
        """A comma-separated list (blanks dropped)."""
        return tuple(i.strip() for i in self.text(name, "").split(",") if i.strip())

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

    def fraction(self, name: str, default: float) -> float:
        raw = self.text(name, str(default))
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name} must be a number, not {raw!r}") from None
        if not 0 < value <= 1:
            raise SettingsError(f"{PREFIX}{name} must be above 0 and at most 1, not {raw!r}")
        return value

    def flag(self, name: str, *, default: bool) -> bool:
        raw = self.text(name, "1" if default else "0").lower()
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{PREFIX}{name} must be 1/0, true/false, yes/no or on/off")
