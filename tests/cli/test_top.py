"""``switchyard top``: a frame renders every panel of a real ``GET /v1/dashboard`` answer (in-process
API), and an unreachable API is shown in the frame instead of ending the live view."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_harness import ApiHarness, open_api
from rich.console import Console
from tests_support import make_test_settings, new_tenant_key

from cli.top import frame, render
from infra.launch import free_port


@pytest.fixture
def api(tmp_path: Path, redis_url: str) -> Iterator[ApiHarness]:
    with open_api(ApiHarness, tmp_path, redis_url, "", {"tier": ["emu-a"], "other_tier": ["emu-b"]}) as api:
        yield api


def printed(renderable: object) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


def test_a_frame_shows_every_panel_of_the_answer(api: ApiHarness) -> None:
    tenant_id, secret = new_tenant_key(api.engine, {"read", "admin"})
    answer = api.client.get("/v1/dashboard", headers={"Authorization": f"Bearer {secret}"}).json()

    text = printed(render(answer))

    assert f"tenant {tenant_id}" in text
    for label in ("jobs ended/s", "provider 429s", "spend today", "dead letters", "queues", "limiter"):
        assert label in text, text
    assert api.tier in text  # an admin key's frame lists every tier's queue
    assert "no provider call in the window" in text and "no failed job" in text


def test_an_unreachable_api_is_shown_and_retried(tmp_path: Path, redis_url: str) -> None:
    settings = make_test_settings(tmp_path, redis_url, api_url=f"http://127.0.0.1:{free_port()}")

    text = printed(frame(settings, "sy_any"))

    assert "Cannot reach the API" in text and "retrying" in text
