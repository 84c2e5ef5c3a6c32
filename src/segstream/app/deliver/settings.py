"""Settings of `segstream deliver`, from SEGSTREAM_DELIVER_* variables (and the worker's)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from segstream.app.outbound import OutboundPolicy
from segstream.app.settings import SettingsError, WorkerSettings

__all__ = ["DeliverSettings"]

_P = "SEGSTREAM_DELIVER_"


@dataclass(frozen=True)
class DeliverSettings:
    """Kafka and topics (shared with the worker), the outbound policy, retries, the web port."""

    worker: WorkerSettings
    policy: OutboundPolicy
    #: A batch goes to the dead-letter topic after this many failed attempts...
    max_attempts: int
    #: ...or once this long has passed since its first attempt.
    max_retry_s: float
    backoff_initial_s: float
    backoff_max_s: float
    #: One request, connection to last byte.
    request_timeout_s: float
    #: Extra CA bundle to trust for destinations (default: the system's).
    ca_file: str | None
    #: The folder `{"file": NAME}` secret references are read from.
    secrets_dir: Path
    web_host: str
    web_port: int
    #: How often the destinations topic is read for changes.
    refresh_s: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DeliverSettings:
        """Settings from `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ
        worker = WorkerSettings.from_env(env)

        def number(name: str, default: float, minimum: float = 0.0) -> float:
            raw = env.get(_P + name, "").strip() or str(default)
            try:
                value = float(raw)
            except ValueError:
                raise SettingsError(f"{_P}{name} must be a number, not {raw!r}") from None
            if value < minimum:
                raise SettingsError(f"{_P}{name} must be at least {minimum:g}, not {raw}")
            return value

        return cls(
            worker=worker,
            policy=OutboundPolicy.from_env(env),
            max_attempts=int(number("MAX_ATTEMPTS", 12, 1)),
            max_retry_s=number("MAX_RETRY_S", 3600.0, 0.0),
            backoff_initial_s=number("BACKOFF_INITIAL_S", 0.5, 0.001),
            backoff_max_s=number("BACKOFF_MAX_S", 60.0, 0.001),
            request_timeout_s=number("REQUEST_TIMEOUT_S", 10.0, 0.1),
            ca_file=env.get(_P + "CA_FILE", "").strip() or None,
            secrets_dir=Path(env.get(_P + "SECRETS_DIR", "").strip() or "/run/secrets/segstream"),
            web_host=env.get(_P + "WEB_HOST", "").strip() or worker.web_host,
            web_port=int(number("WEB_PORT", 6067, 0)),
            refresh_s=number("REFRESH_S", 1.0, 0.05),
        )
