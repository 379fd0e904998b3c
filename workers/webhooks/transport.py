"""An httpx transport that checks every request against the SSRF guard and connects to the
checked address, keeping the URL's name for the Host header and TLS (SNI and certificate)."""

from __future__ import annotations

import httpx

from schemas.settings import WebhookSettings
from workers.webhooks.ssrf import Resolver, check_url, system_resolver


class GuardedTransport(httpx.HTTPTransport):
    """Resolves and checks the host once per request, then dials that very address."""

    def __init__(
        self, settings: WebhookSettings, resolver: Resolver = system_resolver, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.settings = settings
        self.resolver = resolver

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target = check_url(str(request.url), self.settings, self.resolver)
        # The Host header was set from the name when the request was built; only the dial changes.
        request.url = request.url.copy_with(host=target.address)
        if target.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": target.host}
        return super().handle_request(request)


def guarded_client(settings: WebhookSettings, resolver: Resolver = system_resolver) -> httpx.Client:
    """The client every delivery uses: guarded, no redirects, the configured timeouts."""
    timeout = httpx.Timeout(
        connect=settings.connect_timeout_s,
        read=settings.read_timeout_s,
        write=settings.read_timeout_s,
        pool=5.0,
    )
    return httpx.Client(
        transport=GuardedTransport(settings, resolver),
        timeout=timeout,
        follow_redirects=False,
        # Idle connections are dropped before common servers' keep-alive timeouts (uvicorn: 5 s),
        # so a reused connection is rarely one the receiver is closing at that very moment.
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=4.0),
        headers={"User-Agent": "Switchyard-Webhooks/1"},
    )
