"""Which advertised web URLs this worker calls as peers (pure).

A status record's `web` names the worker that owns a partition; whoever can write the status
topic can put any URL there. So a URL is called only when it is a plain `scheme://host:port`
(no user or password, path, query or fragment) and either matches one of the patterns of
SEGSTREAM_API_PEER_URLS or, when none are set, looks like this worker's own URL: the same
scheme, and

- this worker on a loopback address: a loopback host, any port (workers on one machine);
- on a DNS name `me.group.example`: a host `*.group.example` on the same port (a headless
  Service's pod names); on a single-label name (`worker-1`, Compose): a single-label name;
- on an IP address (or the wildcard bind): a private or loopback IP on the same port.

Peers also get the peer token only, never a client's token (settings.peer_token).
"""

from __future__ import annotations

import fnmatch
import ipaddress
from urllib.parse import SplitResult, urlsplit

from segstream.app.settings import is_loopback

__all__ = ["normal_url", "peer_url_problem"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _parts(url: str) -> tuple[SplitResult, int] | str:
    """The split URL and its port, or why it is not a plain scheme://host:port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a URL"
    if parts.scheme not in _DEFAULT_PORTS:
        return "not http:// or https://"
    if "@" in parts.netloc:
        return "it carries a user or password"
    if not parts.hostname:
        return "it has no host"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "it has a path, query or fragment"
    return parts, port if port is not None else _DEFAULT_PORTS[parts.scheme]


def normal_url(url: str) -> str | None:
    """`scheme://host:port` in lower case (None when not a plain URL)."""
    found = _parts(url)
    if isinstance(found, str):
        return None
    parts, port = found
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown.rstrip('.')}:{port}"


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _like_own(peer: SplitResult, port: int, own_url: str) -> bool:
    found = _parts(own_url)
    if isinstance(found, str):
        return False
    own, own_port = found
    host, mine = (peer.hostname or "").rstrip("."), (own.hostname or "").rstrip(".")
    if peer.scheme != own.scheme:
        return False
    if is_loopback(mine):
        return is_loopback(host)
    if port != own_port:
        return False
    own_ip = _ip(mine)
    if own_ip is not None:
        peer_ip = _ip(host)
        return peer_ip is not None and (peer_ip.is_private or peer_ip.is_loopback)
    if _ip(host) is not None:
        return False
    if "." not in mine:
        return "." not in host
    return host.endswith("." + mine.partition(".")[2]) and "." in host


def peer_url_problem(url: str, patterns: tuple[str, ...], own_url: str | None) -> str | None:
    """Why `url` is not called as a peer (None: it may be)."""
    found = _parts(url)
    if isinstance(found, str):
        return found
    parts, port = found
    if patterns:
        normal = normal_url(url) or ""
        if any(fnmatch.fnmatchcase(normal, p.lower().rstrip("/")) for p in patterns):
            return None
        return "it matches none of SEGSTREAM_API_PEER_URLS"
    if own_url is None or not _like_own(parts, port, own_url):
        return "it does not look like this worker's own URL (set SEGSTREAM_API_PEER_URLS)"
    return None
