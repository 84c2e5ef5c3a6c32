"""Which advertised URLs a worker calls as peers (pure)."""

from __future__ import annotations

import pytest

from segstream.api.peers import normal_url, peer_url_problem


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pw@127.0.0.1:1",
        "http://@127.0.0.1:1",
        "http://127.0.0.1:1/x",
        "http://127.0.0.1:1?a=b",
        "http://127.0.0.1:1#f",
        "file:///etc/passwd",
        "http://127.0.0.1:99999",
        "not a url",
    ],
)
def test_only_plain_urls(url: str) -> None:
    assert peer_url_problem(url, (), "http://127.0.0.1:6066") is not None


@pytest.mark.parametrize(
    ("own", "peer", "allowed"),
    [
        ("http://127.0.0.1:6066", "http://127.0.0.1:7001", True),
        ("http://127.0.0.1:6066", "http://localhost:7001/", True),
        ("http://127.0.0.1:6066", "http://evil.example:6066", False),
        ("http://127.0.0.1:6066", "https://127.0.0.1:6066", False),
        ("http://w-0.seg.ns.svc:6066", "http://w-1.seg.ns.svc:6066", True),
        ("http://w-0.seg.ns.svc:6066", "http://w-1.seg.ns.svc:6067", False),
        ("http://w-0.seg.ns.svc:6066", "http://evil.example:6066", False),
        ("http://w-0.seg.ns.svc:6066", "http://seg.ns.svc.evil.example:6066", False),
        ("http://w-0.seg.ns.svc:6066", "http://10.0.0.5:6066", False),
        ("http://worker-1:6066", "http://worker-2:6066", True),
        ("http://worker-1:6066", "http://worker-2.evil.example:6066", False),
        ("http://10.0.0.4:6066", "http://10.0.0.5:6066", True),
        ("http://10.0.0.4:6066", "http://8.8.8.8:6066", False),
        ("http://10.0.0.4:6066", "http://internal-name:6066", False),
    ],
)
def test_default_peers_look_like_this_worker(own: str, peer: str, allowed: bool) -> None:
    assert (peer_url_problem(peer, (), own) is None) is allowed


def test_patterns_replace_the_default() -> None:
    patterns = ("http://segstream-*.prod.example:6066",)
    own = "http://127.0.0.1:6066"
    assert peer_url_problem("http://segstream-3.prod.example:6066", patterns, own) is None
    assert peer_url_problem("http://SEGSTREAM-3.prod.example:6066/", patterns, own) is None
    assert peer_url_problem("http://127.0.0.1:6066", patterns, own) is not None
    assert peer_url_problem("http://segstream-3.prod.example:80", patterns, own) is not None
    assert normal_url("http://A.example") == "http://a.example:80"
    assert normal_url("https://[::1]") == "https://[::1]:443"
