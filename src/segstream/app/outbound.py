"""Where webhook destinations may point: the operator's host allow-list and address rules.

Checked twice: when a destination is written (API, CLI), so that a bad one is refused with a
message, and by `segstream deliver` on every connection, on the addresses a name resolves to
(a name that resolves to a private address later, DNS rebinding, is refused then).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from segstream.app.settings import SettingsError
from segstream.errors import Problem
from segstream.schemas.destinations import validate_destination

__all__ = ["GuardedResolver", "OutboundPolicy", "RefusedAddress"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedAddress(OSError):
    """A destination's host resolved only to addresses the policy refuses."""


@dataclass(frozen=True)
class OutboundPolicy:
    """Which hosts and addresses `segstream deliver` may connect to."""

    #: Host names or patterns (`hooks.example.com`, `*.example.com`); empty: none allowed.
    allowed_hosts: tuple[str, ...] = ()
    #: Networks allowed although not global (loopback, private, link-local...).
    allowed_networks: tuple[IPNetwork, ...] = ()
    #: Plain-HTTP URLs (for development only).
    allow_http: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OutboundPolicy:
        """SEGSTREAM_DELIVER_ALLOWED_HOSTS, _ALLOWED_NETWORKS and _ALLOW_HTTP."""
        env = os.environ if environ is None else environ
        hosts = tuple(
            h.strip().lower().rstrip(".")
            for h in env.get("SEGSTREAM_DELIVER_ALLOWED_HOSTS", "").split(",")
            if h.strip()
        )
        networks: list[IPNetwork] = []
        for text in env.get("SEGSTREAM_DELIVER_ALLOWED_NETWORKS", "").split(","):
            if text.strip():
                try:
                    networks.append(ipaddress.ip_network(text.strip(), strict=False))
                except ValueError as exc:
                    raise SettingsError(
                        f"SEGSTREAM_DELIVER_ALLOWED_NETWORKS: {text.strip()!r}: {exc}"
                    ) from None
        flag = env.get("SEGSTREAM_DELIVER_ALLOW_HTTP", "0").strip().lower()
        return cls(hosts, tuple(networks), flag in ("1", "true", "yes", "on"))

    def host_allowed(self, host: str) -> bool:
        """True when `host` matches an allow-list entry (`*.` matches any subdomain)."""
        host = host.lower().rstrip(".")
        for pattern in self.allowed_hosts:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                    return True
            elif host == pattern:
                return True
        return False

    def address_allowed(self, address: str) -> bool:
        """True for a global address, or one inside an explicitly allowed network."""
        try:
            ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allowed_networks):
            return True
        return ip.is_global and not ip.is_multicast

    def problems(self, raw: object) -> list[Problem]:
        """A submitted destination's problems: its form, then whether its host is allowed."""
        problems = validate_destination(raw, allow_http=self.allow_http)
        if problems:
            return problems
        assert isinstance(raw, dict)
        return self.url_problems(raw["url"])

    def url_problems(self, url: str) -> list[Problem]:
        """Problems of a well-formed URL under this policy (host, literal address)."""
        host = urlsplit(url).hostname or ""
        if not self.host_allowed(host):
            return [
                Problem(
                    "url",
                    f"the host '{host}' is not in the operator's allow-list "
                    "(SEGSTREAM_DELIVER_ALLOWED_HOSTS)",
                )
            ]
        if _is_address(host) and not self.address_allowed(host):
            return [
                Problem(
                    "url",
                    f"the address {host} is not public; allow its network explicitly "
                    "(SEGSTREAM_DELIVER_ALLOWED_NETWORKS)",
                )
            ]
        return []


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class GuardedResolver(ThreadedResolver):
    """aiohttp's resolver, keeping only the addresses the policy allows.

    aiohttp does not resolve literal addresses; the sender checks those itself
    (`OutboundPolicy.url_problems`) before each request.
    """

    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__()
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await super().resolve(host, port, family)
        allowed = [entry for entry in found if self._policy.address_allowed(entry["host"])]
        if not allowed:
            raise RefusedAddress(f"{host} resolves only to addresses that are not allowed")
        return allowed
