"""One batch to one URL: signed POSTs until a 2xx, with backoff and jitter; or give up.

Retried: 5xx, 429 (after its Retry-After), timeouts, connection errors, and also other 4xx
and 3xx answers (redirects are never followed: a receiver that moved must be re-configured).
A batch that still fails after `max_attempts` attempts or `max_retry_s` seconds is handed
back as given up, and the caller dead-letters it.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from segstream.app.deliver.metrics import DeliverMetrics
from segstream.app.deliver.settings import DeliverSettings
from segstream.app.deliver.signing import SecretUnavailable, webhook_headers
from segstream.app.outbound import RefusedAddress

__all__ = ["Blocked", "Outcome", "WebhookSender", "backoff_delay", "retry_after_seconds"]

log = logging.getLogger(__name__)

#: Most of a response body that goes into a log line.
LOGGED_BODY_CHARS = 120
_USER_AGENT = "segstream-deliver/1"


class Blocked(Exception):
    """The destination cannot be sent to now for a reason retrying will not fix by itself
    (its secret is missing, its host is no longer allowed); the batch waits, it is not
    dead-lettered."""


@dataclass(frozen=True)
class Outcome:
    """How a batch ended: delivered, or given up after `attempts` with the last `reason`."""

    delivered: bool
    attempts: int
    reason: str = ""


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """The pause after failed attempt `attempt` (1-based): exponential, capped, with jitter
    (between half and all of it, so that many senders do not retry in step)."""
    ceiling = min(maximum, initial * (2 ** min(attempt - 1, 30)))
    return float(ceiling * rng.uniform(0.5, 1.0))


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A Retry-After header as seconds from now (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now, 0.0)


class WebhookSender:
    """POSTs signed batches through one aiohttp session (the policy's resolver inside)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: DeliverSettings,
        metrics: DeliverMetrics,
        keys: Callable[[], list[bytes]],
        rng: random.Random | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.metrics = metrics
        self._keys = keys
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    async def send(self, destination: str, url: str, message_id: str, body: bytes) -> Outcome:
        """Send until a 2xx or the limits; raises Blocked (after a pause) when it cannot."""
        settings = self.settings
        first = time.monotonic()
        attempt = 0
        while True:
            self._check_url(url)
            try:
                keys = self._keys()
            except SecretUnavailable as exc:
                raise Blocked(str(exc)) from None
            attempt += 1
            if attempt > 1:
                self.metrics.retry(destination)
            reason, wait = await self._attempt(destination, url, message_id, body, keys)
            if reason is None:
                return Outcome(True, attempt)
            self.metrics.failed_attempt(destination, reason)
            self.metrics.set_failing(destination, True)
            delay = backoff_delay(
                attempt, settings.backoff_initial_s, settings.backoff_max_s, self._rng
            )
            if wait is not None:
                delay = max(wait, 0.0)
            spent = time.monotonic() - first
            if attempt >= settings.max_attempts or spent + delay > settings.max_retry_s:
                return Outcome(False, attempt, reason)
            await asyncio.sleep(delay)

    def _check_url(self, url: str) -> None:
        problems = self.settings.policy.url_problems(url)
        if problems:
            raise Blocked(problems[0].message)

    async def _attempt(
        self, destination: str, url: str, message_id: str, body: bytes, keys: list[bytes]
    ) -> tuple[str | None, float | None]:
        """(None, None) on a 2xx, else (reason, seconds to wait or None for the backoff)."""
        headers = {
            **webhook_headers(keys, message_id, int(time.time()), body),
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
        }
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_s)
        host = urlsplit(url).hostname
        try:
            async with self.session.post(
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                status = response.status
                if 200 <= status < 300:
                    return None, None
                excerpt = (await response.content.read(LOGGED_BODY_CHARS)).decode(
                    "utf-8", "replace"
                )
                retry_after = response.headers.get("Retry-After")
        except TimeoutError:
            log.warning("destination %s: %s timed out", destination, host)
            return "timeout", None
        except RefusedAddress as exc:
            log.warning("destination %s: %s", destination, exc)
            return "connection", None
        except (aiohttp.ClientError, OSError) as exc:
            log.warning(
                "destination %s: cannot reach %s: %s", destination, host, type(exc).__name__
            )
            return "connection", None
        # A receiver's answer is not ours to store: only its first characters are logged.
        log.warning(
            "destination %s: %s answered %d (body starts %r)", destination, host, status, excerpt
        )
        if status == 429:
            return "http_429", retry_after_seconds(retry_after, time.time())
        if status >= 500:
            return "http_5xx", None
        if 300 <= status < 400:
            return "redirect", None
        return "http_4xx", None
