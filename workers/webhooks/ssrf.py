"""The SSRF guard: a webhook URL may only reach public addresses.

The host is resolved once; every address it resolves to must be public (not loopback,
private, link-local, multicast, reserved, unspecified, shared, nor an IPv6 form embedding
one of those). The caller then connects to the checked address itself (see
``workers/webhooks/transport.py``), so a second, different DNS answer (rebinding) is never
used. IPv4 literals in decimal, octal and hex (``2130706433``, ``0177.0.0.1``, ``0x7f.1``)
are read as ``inet_aton`` reads them, which is how any resolver would connect to them.
A fully qualified name's trailing dot (``localhost.``) is dropped first: it names the same
host, and a lookup of the dotted form can fail where the plain one reaches loopback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from schemas.errors import UnsafeCallbackUrl
from schemas.settings import WebhookSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to; tests stub it at this boundary.
Resolver = Callable[[str, int], list[str]]
HELP = "Use a public http(s) URL whose host name resolves only to public addresses."


class ResolutionFailed(Exception):
    """The host name did not resolve; may be temporary, so a delivery retries."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to call it (``host``)."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ResolutionFailed(f"{host!r} does not resolve: {exc}") from exc
    return [str(info[4][0]) for info in infos]


def check_url(url: str, settings: WebhookSettings, resolver: Resolver = system_resolver) -> Target:
    """The URL's connect target, or :class:`UnsafeCallbackUrl` saying why it may not be called."""
    parts = urlsplit(url)
    allowed = ("https",) if settings.require_https else ("http", "https")
    if parts.scheme not in allowed:
        raise UnsafeCallbackUrl(
            f"{url[:200]!r}: the scheme must be {' or '.join(allowed)}. {HELP}", url=url[:200]
        )
    host = host_name(parts.hostname or "")
    if not host:
        raise UnsafeCallbackUrl(f"{url[:200]!r} has no host. {HELP}", url=url[:200])
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = ip_literal(host)
    addresses = [literal] if literal is not None else [_parse(a) for a in resolver(host, port)]
    if not addresses:
        raise ResolutionFailed(f"{host!r} resolved to no address")
    for address in addresses:
        reason = unsafe_reason(address, allow_loopback=settings.allow_loopback)
        if reason is not None:
            raise UnsafeCallbackUrl(
                f"{url[:200]!r} reaches {address}, a {reason} address. {HELP}", url=url[:200], reason=reason
            )
    return Target(url, parts.scheme, host, port, str(addresses[0]))


def host_name(host: str) -> str:
    """The host as it is checked and dialled: without the root label's trailing dot(s)."""
    return host.rstrip(".")


def ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells as an IP literal in any form, or None for a name."""
    try:
        return _parse(host)
    except ValueError:
        pass
    try:  # decimal, octal, hex and shortened IPv4 forms, as inet_aton (and so connect) reads them
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def unsafe_reason(address: IPAddress, allow_loopback: bool = False) -> str | None:
    """Why a webhook may not connect to ``address`` (e.g. ``private``), or None if it may."""
    for embedded in _embedded_ipv4(address):
        reason = unsafe_reason(embedded, allow_loopback)
        if reason is not None:
            return f"{reason} (embedded in IPv6)"
    if address.is_loopback:
        return None if allow_loopback else "loopback"
    checks = (
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [address.ipv4_mapped, address.sixtofour, address.teredo[1] if address.teredo else None]
    if address in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64 reaches the IPv4 address inside
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [ip for ip in found if ip is not None]


def _parse(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id


def check_registered_url(url: str, settings: WebhookSettings, resolver: Resolver = system_resolver) -> None:
    """The check when a URL is registered: refuse an unsafe one. A name that does not resolve
    passes: it reaches nothing now, and every send resolves and checks it again, which is the
    guard that counts for any name (see "SSRF guard" in docs/webhooks.md)."""
    with contextlib.suppress(ResolutionFailed):
        check_url(url, settings, resolver)
