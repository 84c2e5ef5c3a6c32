"""Who may call the API, without Kafka: tokens on every route, Host, Origin, Content-Type."""

from __future__ import annotations

import hashlib
import hmac

import aiohttp
from test_api_shell import call, serve

TOKEN, READ, PEER = "admin-s3cret", "read-s3cret", "peer-s3cret"
JSON = {"Content-Type": "application/json"}

PUBLIC = [
    ("GET", "/api/segments"),
    ("GET", "/api/segments/a"),
    ("GET", "/api/segments/a/members"),
    ("GET", "/api/profiles/p1"),
    ("GET", "/api/openapi.yaml"),
    ("POST", "/api/segments/preview"),
    ("POST", "/api/segments"),
    ("PUT", "/api/segments/a"),
    ("DELETE", "/api/segments/a"),
]
INTERNAL = [
    ("POST", "/internal/preview"),
    ("GET", "/internal/partitions/0/profiles/p1"),
    ("GET", "/internal/partitions/0/segments/a/members"),
]
WRITES = {("POST", "/api/segments"), ("PUT", "/api/segments/a"), ("DELETE", "/api/segments/a")}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **JSON}


def test_with_a_token_every_api_and_internal_route_needs_one() -> None:
    async def check(session: aiohttp.ClientSession, url: str) -> None:
        for method, path in PUBLIC + INTERNAL:
            for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
                status, body, answer = await call(
                    session, method, url + path, json={}, headers={**headers, **JSON}
                )
                assert (status, body["code"]) == (401, "unauthorized"), (method, path)
                assert answer["WWW-Authenticate"].startswith("Bearer")
        # The probes, the metrics and the page need none.
        for path in ("/livez", "/readyz", "/metrics"):
            async with session.get(url + path) as probe:
                assert probe.status == 200, path

    serve(check, API_TOKEN=TOKEN)


def test_read_token_reads_only_and_tokens_are_not_interchangeable() -> None:
    async def check(session: aiohttp.ClientSession, url: str) -> None:
        async with session.get(url + "/api/openapi.yaml", headers=bearer(READ)) as document:
            assert document.status == 200
        for method, path in PUBLIC:
            if path == "/api/openapi.yaml":
                continue
            status, body, _ = await call(session, method, url + path, json={}, headers=bearer(READ))
            if (method, path) in WRITES:
                assert (status, body["code"]) == (403, "forbidden"), (method, path)
            else:
                assert status not in (401, 403), (method, path, body)
            # The peer token opens no public route.
            status, body, _ = await call(session, method, url + path, json={}, headers=bearer(PEER))
            assert status == 401, (method, path)
        for method, path in INTERNAL:
            for token in (TOKEN, READ):  # a client's token is no peer token
                status, _, _ = await call(
                    session, method, url + path, json={}, headers=bearer(token)
                )
                assert status == 401, (method, path)
            status, _, _ = await call(session, method, url + path, json={}, headers=bearer(PEER))
            assert status not in (401, 403), (method, path)

    serve(check, API_TOKEN=TOKEN, API_READ_TOKEN=READ, API_PEER_TOKEN=PEER)


def test_the_peer_token_is_derived_from_the_api_token_when_not_set() -> None:
    derived = hmac.new(TOKEN.encode(), b"segstream peer v1", hashlib.sha256).hexdigest()

    async def check(session: aiohttp.ClientSession, url: str) -> None:
        path = url + "/internal/partitions/0/profiles/p1"
        status, _, _ = await call(session, "GET", path, headers=bearer(TOKEN))
        assert status == 401
        status, body, _ = await call(session, "GET", path, headers=bearer(derived))
        assert (status, body["code"]) == (503, "partition_unavailable")

    serve(check, API_TOKEN=TOKEN)


def test_writes_need_json_and_this_origin_even_without_a_token() -> None:
    async def check(session: aiohttp.ClientSession, url: str) -> None:
        host = url.removeprefix("http://")
        definition = b'{"id": "a", "name": "A", "condition": {"trait": "x", "op": "exists"}}'
        for method, path in [("POST", "/api/segments"), ("PUT", "/api/segments/a")]:
            # A cross-site form or a "simple" fetch: text/plain, another origin.
            status, body, _ = await call(
                session,
                method,
                url + path,
                data=definition,
                headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
            )
            assert (status, body["code"]) == (403, "origin_not_allowed"), (method, path)
            status, body, _ = await call(
                session, method, url + path, data=definition, headers={"Content-Type": "text/plain"}
            )
            assert (status, body["code"]) == (415, "unsupported_media_type")
        for origin in ("https://evil.example", "null", f"http://{host}.evil.example"):
            status, body, _ = await call(
                session,
                "DELETE",
                url + "/api/segments/a",
                headers={"Origin": origin},
            )
            assert (status, body["code"]) == (403, "origin_not_allowed"), origin
        # Same origin (the page) and no origin (curl) get past the checks (Kafka is not
        # reachable here: 503, with no broker address in the body).
        for headers in ({"Origin": f"http://{host}"}, {}):
            status, body, _ = await call(
                session, "POST", url + "/api/segments", data=definition, headers={**headers, **JSON}
            )
            assert (status, body["code"]) == (503, "kafka_unavailable"), body
            assert "127.0.0.1:1" not in body["message"] and ":1" not in body["message"]

    serve(check)


def test_allowed_origins_may_write() -> None:
    async def check(session: aiohttp.ClientSession, url: str) -> None:
        status, body, _ = await call(
            session,
            "DELETE",
            url + "/api/segments/a",
            headers={"Origin": "https://admin.example"},
        )
        assert status == 503, body

    serve(check, API_CORS_ORIGINS="https://admin.example")


def test_host_must_be_an_allowed_name() -> None:
    async def check(session: aiohttp.ClientSession, url: str) -> None:
        port = url.rsplit(":", 1)[1]
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.2", ""):
            status, body, _ = await call(
                session, "GET", url + "/api/segments", headers={"Host": host}
            )
            assert (status, body["code"]) == (421, "host_not_allowed"), host
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", "[::1]:1"):
            status, body, _ = await call(
                session, "GET", url + "/api/segments/a", headers={"Host": host}
            )
            assert status == 503, (host, body)  # past the check; Kafka is not reachable
        async with session.get(url + "/livez", headers={"Host": "evil.example"}) as probe:
            assert probe.status == 200  # probes come from anywhere

    serve(check)


def test_a_host_allow_list_replaces_the_default() -> None:
    async def check(session: aiohttp.ClientSession, url: str) -> None:
        for host, allowed in (
            ("segstream.example", True),
            ("w1.pods.example:6066", True),
            ("segstream.example:1", True),
            ("pods.example", False),
            ("127.0.0.1", False),
        ):
            status, body, _ = await call(
                session, "GET", url + "/api/segments/a", headers={"Host": host}
            )
            assert (status == 421) is not allowed, (host, body)

    serve(check, WEB_ALLOWED_HOSTS="segstream.example:6066,*.pods.example")


def test_preflight_needs_no_token() -> None:
    async def check(session: aiohttp.ClientSession, url: str) -> None:
        good = {"Origin": "https://admin.example"}
        async with session.options(f"{url}/api/segments", headers=good) as preflight:
            assert preflight.status == 204

    serve(check, API_TOKEN=TOKEN, API_CORS_ORIGINS="https://admin.example")
