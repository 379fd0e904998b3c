"""The SSRF guard: every non-public address class, IPv4 literal spellings, IPv6 forms, DNS
names resolving inward (resolver stubbed at the boundary), schemes and redirects, with a
canary listener on loopback that must receive nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from schemas.errors import UnsafeCallbackUrl
from schemas.settings import WebhookSettings
from workers.webhooks.ssrf import check_registered_url, check_url, ip_literal
from workers.webhooks.transport import guarded_client

GUARD = WebhookSettings.model_validate({})
UNSAFE_ADDRESSES = {
    "127.0.0.1": "loopback",
    "127.1.2.3": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "0.0.0.0": "unspecified",
    "100.64.0.1": "non-public",  # carrier-grade NAT
    "192.0.2.10": "private",  # documentation range
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "ff02::1": "multicast",
    "::ffff:127.0.0.1": "loopback (embedded in IPv6)",
    "::ffff:169.254.169.254": "link-local (embedded in IPv6)",
    "::ffff:10.0.0.1": "private (embedded in IPv6)",
    "64:ff9b::a00:1": "private (embedded in IPv6)",  # NAT64 of 10.0.0.1
    "2002:7f00:1::": "loopback (embedded in IPv6)",  # 6to4 of 127.0.0.1
}
LOOPBACK_SPELLINGS = ["2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "0177.1", "127.1", "017700000001"]


class Canary:
    """A loopback listener that records every request it gets."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                canary.hits.append(self.path)
                self.send_response(200)
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.server.shutdown()


def bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@pytest.mark.parametrize(("address", "reason"), UNSAFE_ADDRESSES.items())
def test_every_non_public_address_class_is_refused(address: str, reason: str) -> None:
    with pytest.raises(UnsafeCallbackUrl) as refused:
        check_url(f"http://{bracket(address)}:8080/hook", GUARD)
    assert refused.value.code == "unsafe_callback_url" and refused.value.details["reason"] == reason
    assert "public" in refused.value.message  # says what to do


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS)
def test_decimal_octal_and_hex_spellings_of_loopback_are_refused(spelling: str) -> None:
    assert str(ip_literal(spelling)) == "127.0.0.1"
    with pytest.raises(UnsafeCallbackUrl, match="loopback"):
        check_url(f"http://{spelling}/", GUARD)


def test_a_private_address_spelled_in_hex_is_refused() -> None:
    with pytest.raises(UnsafeCallbackUrl, match="private"):
        check_url("http://0xa.0x1.0x2.0x3/", GUARD)


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return {"internal.example": ["10.0.0.5"], "mixed.example": ["93.184.216.34", "192.168.0.9"]}[host]

    with pytest.raises(UnsafeCallbackUrl, match="private"):
        check_url("https://internal.example/hook", GUARD, resolver)
    with pytest.raises(UnsafeCallbackUrl, match=r"192\.168\.0\.9"):  # any one address is enough
        check_url("https://mixed.example/hook", GUARD, resolver)


def test_a_public_name_passes_and_is_pinned_to_its_checked_address() -> None:
    target = check_url("https://hooks.example/x", GUARD, lambda host, port: ["93.184.216.34", "2606:2800::1"])
    assert (target.host, target.port, target.address) == ("hooks.example", 443, "93.184.216.34")


@pytest.mark.parametrize(
    "url", ["ftp://93.184.216.34/", "file:///etc/passwd", "gopher://93.184.216.34/", "//x/"]
)
def test_non_http_schemes_are_refused(url: str) -> None:
    with pytest.raises(UnsafeCallbackUrl, match="scheme"):
        check_url(url, GUARD)


def test_a_setting_can_require_https() -> None:
    strict = WebhookSettings.model_validate({"require_https": True})
    with pytest.raises(UnsafeCallbackUrl, match="https"):
        check_url("http://93.184.216.34/", strict)
    assert check_url("https://93.184.216.34/", strict).address == "93.184.216.34"


def test_loopback_passes_only_with_the_test_setting() -> None:
    assert WebhookSettings.model_validate({}).allow_loopback is False
    allowing = WebhookSettings.model_validate({"allow_loopback": True})
    assert check_url("http://127.0.0.1:9/", allowing).address == "127.0.0.1"
    with pytest.raises(UnsafeCallbackUrl, match="private"):  # only loopback, nothing else
        check_url("http://10.0.0.1/", allowing)


def test_an_unresolvable_name_may_be_registered_but_an_unsafe_one_not() -> None:
    def nowhere(host: str, port: int) -> list[str]:
        from workers.webhooks.ssrf import ResolutionFailed

        raise ResolutionFailed(host)

    check_registered_url("https://not-yet.example/", GUARD, nowhere)
    with pytest.raises(UnsafeCallbackUrl):
        check_registered_url("http://0x7f.1/", GUARD, nowhere)


def hosts_file(host: str, port: int) -> list[str]:
    """A resolver like /etc/hosts: it knows ``localhost`` and not its dotted form."""
    from workers.webhooks.ssrf import ResolutionFailed

    if host != "localhost":
        raise ResolutionFailed(host)
    return ["127.0.0.1"]


@pytest.mark.parametrize(
    "url", ["http://localhost.:9/", "http://LOCALHOST./x", "http://127.0.0.1.:9/", "http://0x7f.1./"]
)
def test_a_trailing_dot_is_dropped_before_the_check_so_registration_refuses_loopback(url: str) -> None:
    with pytest.raises(UnsafeCallbackUrl, match="loopback"):
        check_registered_url(url, GUARD, hosts_file)
    with pytest.raises(UnsafeCallbackUrl, match="loopback"):
        check_registered_url(url, GUARD)  # the system resolver too


def test_a_fully_qualified_name_is_dialled_and_named_without_its_dot() -> None:
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["93.184.216.34"]

    target = check_url("https://hooks.example./x", GUARD, resolver)
    assert (target.host, asked) == ("hooks.example", ["hooks.example"])  # the name TLS (SNI) sends


def test_the_guarded_client_sends_nothing_to_unsafe_urls(canary: Canary) -> None:
    port = canary.port
    urls = [f"http://{spelling}:{port}/hit" for spelling in ["127.0.0.1", *LOOPBACK_SPELLINGS]]
    urls += [f"http://[::ffff:127.0.0.1]:{port}/hit", f"http://localhost:{port}/hit"]
    with guarded_client(GUARD) as client:
        for url in urls:
            # httpx itself refuses to parse some spellings (0177.0.0.1); either way nothing is sent.
            with pytest.raises((UnsafeCallbackUrl, httpx.InvalidURL)):
                client.post(url, content=b"{}")
    with guarded_client(GUARD, lambda host, port: ["127.0.0.1"]) as client, pytest.raises(UnsafeCallbackUrl):
        client.post(f"http://rebind.example:{port}/hit", content=b"{}")
    assert canary.hits == []


def test_a_redirect_to_loopback_is_not_followed(canary: Canary) -> None:
    target = f"http://127.0.0.1:{canary.port}/stolen"

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(307)
            self.send_header("Location", target)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    redirector = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=redirector.serve_forever, daemon=True).start()
    try:
        # The redirector itself is reachable only because the test allows loopback.
        with guarded_client(WebhookSettings.model_validate({"allow_loopback": True})) as client:
            response = client.post(f"http://127.0.0.1:{redirector.server_address[1]}/", content=b"{}")
    finally:
        redirector.shutdown()
    assert response.status_code == 307 and response.headers["location"] == target
    assert canary.hits == []


def test_the_guarded_client_connects_to_the_checked_address_keeping_the_name(canary: Canary) -> None:
    # receiver.invalid resolves nowhere in real DNS: the request can only arrive through the
    # pinned address, and it arrives with the name in its Host header.
    hosts: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        hosts.append(host)
        return ["127.0.0.1"]

    with guarded_client(WebhookSettings.model_validate({"allow_loopback": True}), resolver) as client:
        response = client.post(f"http://receiver.invalid:{canary.port}/pinned", content=b"{}")
    assert response.status_code == 200 and canary.hits == ["/pinned"] and hosts == ["receiver.invalid"]
