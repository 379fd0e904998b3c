"""`switchyard demo` takes its API key from Settings (SWITCHYARD_API_KEY), else the demo key."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests_support import TEST_CONFIG

from cli.demo import running_api
from schemas.settings import Settings, load_settings


class Ready(http.server.BaseHTTPRequestHandler):
    """A server that answers like a ready Switchyard API."""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/readyz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def ready_api() -> Iterator[str]:
    """The URL of a server whose /readyz answers 200, so the demo starts nothing."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def demo_settings(tmp_path: Path, api_url: str, **overrides: object) -> Settings:
    return load_settings(config_file=TEST_CONFIG, var_dir=tmp_path, api_url=api_url, **overrides)


def test_the_api_key_setting_comes_from_switchyard_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_API_KEY", "sy_from_the_environment")

    settings = load_settings(config_file=TEST_CONFIG)

    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "sy_from_the_environment"
    assert "sy_from_the_environment" not in repr(settings)


def test_the_demo_on_a_running_api_uses_the_key_of_its_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ready_api: str
) -> None:
    monkeypatch.delenv("SWITCHYARD_API_KEY", raising=False)
    settings = demo_settings(tmp_path, ready_api, api_key="sy_passed_in")

    with running_api(settings, "local") as key:
        assert key == "sy_passed_in"


def test_an_empty_api_key_falls_back_to_the_demo_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ready_api: str
) -> None:
    monkeypatch.setenv("SWITCHYARD_API_KEY", "")
    (tmp_path / "demo-key").write_text("sy_demo\n")

    with running_api(demo_settings(tmp_path, ready_api), "local") as key:
        assert key == "sy_demo"
