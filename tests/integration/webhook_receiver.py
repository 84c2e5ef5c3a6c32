"""A real HTTPS webhook receiver on 127.0.0.1 for the deliver tests (aiohttp, own thread).

Every request is checked with `standardwebhooks` (the scheme's reference implementation, not
our code) and recorded; a `behaviour` callback decides each answer: status, delay, headers.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook

#: (path, request number on that path) -> (status, seconds to wait before answering, headers)
Behaviour = Callable[[str, int], tuple[int, float, dict[str, str]]]


def make_secret() -> str:
    """A Standard Webhooks secret: whsec_ + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """(cert, key) for 127.0.0.1 and localhost, made with the openssl command."""
    cert, key = folder / "receiver-cert.pem", folder / "receiver-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@dataclass
class Received:
    """One request as the receiver saw it, with the answer it chose."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    signature_ok: bool


@dataclass
class Receiver:
    """An HTTPS server in a thread of its own; `requests` grows as requests come in."""

    folder: Path
    secret: str
    behaviour: Behaviour
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    cert: Path | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None
    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        self.cert, key = self_signed_certificate(self.folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
            loop.run_until_complete(site.start())
            self.port = self._runner.addresses[0][1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="webhook-receiver", daemon=True)
        self._thread.start()
        assert ready.wait(30), "the receiver did not start"
        return self

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = dict(request.headers)
        try:
            Webhook(self.secret).verify(body, headers, json_parse=False)
            signature_ok = True
        except Exception:
            signature_ok = False
        with self._lock:
            number = self._counts.get(request.path, 0)
            self._counts[request.path] = number + 1
        status, delay, extra = self.behaviour(request.path, number)
        # Recorded before the answer: a receiver that processed a request but answered too
        # late (the sender timed out) has seen it, as a real one would have.
        with self._lock:
            self.requests.append(Received(request.path, headers, body, status, signature_ok))
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=status, headers=extra, text="x" * 500)


def accepted_events(requests: list[Received], path: str) -> list[dict[str, Any]]:
    """The events of every 2xx-answered request to `path`, in arrival order (repeats kept)."""
    import orjson

    events: list[dict[str, Any]] = []
    for received in requests:
        if received.path == path and 200 <= received.status < 300:
            events.extend(orjson.loads(received.body)["events"])
    return events


def deliver_env(receiver: Receiver, **extra: str) -> dict[str, str]:
    """The variables `segstream deliver` needs to reach `receiver` (loopback allowed)."""
    assert receiver.cert is not None
    return {
        "SEGSTREAM_DELIVER_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SEGSTREAM_DELIVER_ALLOWED_NETWORKS": "127.0.0.0/8",
        "SEGSTREAM_DELIVER_CA_FILE": str(receiver.cert),
        "SEGSTREAM_WEBHOOK_SECRET_TEST": receiver.secret,
        "SEGSTREAM_DELIVER_WEB_PORT": "0",
        "SEGSTREAM_DELIVER_BACKOFF_INITIAL_S": "0.05",
        "SEGSTREAM_DELIVER_BACKOFF_MAX_S": "0.4",
        "SEGSTREAM_DELIVER_REQUEST_TIMEOUT_S": "1",
        "SEGSTREAM_DELIVER_REFRESH_S": "0.2",
        **extra,
    }


def always_ok(path: str, number: int) -> tuple[int, float, dict[str, str]]:
    """A receiver that accepts everything."""
    return 200, 0.0, {}
