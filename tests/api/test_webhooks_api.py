"""Webhook endpoints, deliveries and the default secret at the API, in process on SQLite and
PostgreSQL with real Redis: CRUD, the secret shown once, rotation, the SSRF guard at
registration (endpoints and job callback URLs), scopes, tenant isolation, the dead-letter
list and redelivery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from tests_support import make_test_settings, new_tenant_key

from api.main import create_app
from schemas.tables import WebhookDelivery, WebhookEndpoint, utcnow
from workers.migrate import upgrade
from workers.webhooks import deliveries

PUBLIC_URL = "https://93.184.216.34/hooks"  # a public literal: no DNS needed, never called here
ADMIN = {"submit", "read", "admin"}


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    @property
    def services(self) -> Any:
        return self.client.app.state.services  # type: ignore[attr-defined]

    def tenant(self, scopes: set[str] | None = None) -> tuple[str, dict[str, str]]:
        tenant_id, secret = new_tenant_key(self.services.engine, scopes or ADMIN)
        return tenant_id, {"Authorization": f"Bearer {secret}"}

    def create(self, headers: dict[str, str], **fields: Any) -> Any:
        return self.client.post("/v1/webhook-endpoints", json={"url": PUBLIC_URL, **fields}, headers=headers)

    def error(self, response: Any, status: int = 400) -> dict[str, Any]:
        assert response.status_code == status, response.text
        return dict(response.json()["error"])

    def queued_attempts(self) -> list[list[Any]]:
        """The (delivery id, attempts) of every deliver_webhook message on the webhook queue."""
        import base64

        raw = self.services.redis.lrange(self.services.keys.webhook_queue, 0, -1)
        return [json.loads(base64.b64decode(json.loads(item)["body"]))[0] for item in reversed(raw)]


def forget_keys(redis: Any, prefix: str) -> None:
    """Drop every key and queue of this test's prefix."""
    names = redis.keys(f"*{prefix}*")
    if names:
        redis.delete(*names)


@pytest.fixture
def api(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[Api]:
    settings = make_test_settings(tmp_path, redis_url, database_url, webhooks={"max_endpoints_per_tenant": 3})
    upgrade(settings)
    with TestClient(create_app(settings)) as client:
        yield Api(client)
        forget_keys(client.app.state.services.redis, settings.key_prefix)  # type: ignore[attr-defined]


def test_register_show_change_and_delete_an_endpoint(api: Api) -> None:
    _, headers = api.tenant()

    created = api.create(headers, event_types=["job.failed", "job.succeeded"], description="orders")

    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["id"].startswith("we_") and endpoint["object"] == "webhook_endpoint"
    assert endpoint["secret"].startswith("whsec_") and endpoint["enabled"] is True
    assert endpoint["event_types"] == ["job.failed", "job.succeeded"] and endpoint["url"] == PUBLIC_URL
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    shown = api.client.get(path, headers=headers).json()
    assert shown["secret"] is None and shown["id"] == endpoint["id"]  # shown once, on create
    listed = api.client.get("/v1/webhook-endpoints", headers=headers).json()
    assert [row["id"] for row in listed["data"]] == [endpoint["id"]]
    assert all(row["secret"] is None for row in listed["data"])

    changed = api.client.patch(path, json={"enabled": False, "event_types": []}, headers=headers).json()
    assert changed["enabled"] is False and changed["disabled_reason"] == "disabled by the tenant"
    assert changed["event_types"] == []
    enabled = api.client.patch(path, json={"enabled": True}, headers=headers).json()
    assert enabled["enabled"] is True and enabled["disabled_reason"] is None

    assert api.client.delete(path, headers=headers).status_code == 204
    assert api.error(api.client.get(path, headers=headers), 404)["code"] == "not_found"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://2130706433/hook",
        "http://0x7f.1/hook",
        "http://0177.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.8/",
        "http://[::1]/",
        "http://[::ffff:192.168.0.1]/",
        "http://localhost:8080/",
        "http://localhost.:9/",  # a trailing dot names the same host
        "http://0.0.0.0/",
        "http://224.0.0.1/",
    ],
)
def test_an_unsafe_endpoint_url_is_refused(api: Api, url: str) -> None:
    _, headers = api.tenant()
    error = api.error(api.create(headers, url=url))
    assert error["code"] == "unsafe_callback_url" and "public" in error["message"]
    # A job's callback_url goes through the same guard.
    job = {"tier": "small", "request": {"messages": [{"role": "user", "content": "hi"}]}, "callback_url": url}
    assert api.error(api.client.post("/v1/jobs", json=job, headers=headers))["code"] == "unsafe_callback_url"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"url": "ftp://93.184.216.34/x"}, "invalid_callback_url"),
        ({"url": "https://user:pw@93.184.216.34/x"}, "invalid_callback_url"),
        ({"url": "not a url"}, "invalid_callback_url"),
        ({"event_types": ["job.exploded"]}, "unknown_event_type"),
    ],
)
def test_bad_endpoint_fields_answer_400(api: Api, fields: dict[str, Any], code: str) -> None:
    _, headers = api.tenant()
    assert api.error(api.create(headers, **fields))["code"] == code


def test_endpoint_writes_need_the_admin_scope_and_tenants_are_isolated(api: Api) -> None:
    _, admin = api.tenant()
    _, reader = api.tenant({"submit", "read"})
    _, other = api.tenant()
    assert api.error(api.create(reader), 403)["code"] == "insufficient_scope"
    endpoint = api.create(admin).json()
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    assert api.error(api.client.get(path, headers=other), 404)["code"] == "not_found"
    assert api.error(api.client.delete(path, headers=other), 404)["code"] == "not_found"
    assert api.client.get("/v1/webhook-endpoints", headers=other).json()["data"] == []
    # Another tenant's id is no cursor of theirs: a bad cursor, not a missing list.
    theirs = api.client.get("/v1/webhook-endpoints", params={"cursor": endpoint["id"]}, headers=other)
    assert api.error(theirs)["code"] == "invalid_cursor"
    assert (
        api.error(api.client.get("/v1/webhook-secret", headers=reader), 403)["code"] == "insufficient_scope"
    )


def test_a_tenant_has_a_bounded_number_of_endpoints(api: Api) -> None:
    _, headers = api.tenant()
    for _ in range(3):
        assert api.create(headers).status_code == 201
    assert api.error(api.create(headers))["code"] == "too_many_webhook_endpoints"


def test_rotation_shows_a_new_secret_and_keeps_the_old_for_the_grace(api: Api) -> None:
    _, headers = api.tenant()
    endpoint = api.create(headers).json()

    rotated = api.client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", json={"grace_s": 600}, headers=headers
    )

    assert rotated.status_code == 200, rotated.text
    shown = rotated.json()
    assert shown["secret"].startswith("whsec_") and shown["secret"] != endpoint["secret"]
    expires = shown["previous_secret_expires_at"]
    assert expires is not None
    with Session(api.services.engine) as session:
        row = session.get(WebhookEndpoint, endpoint["id"])
    assert row is not None and row.previous_secret == endpoint["secret"] and row.secret == shown["secret"]
    assert row.previous_secret_expires_at is not None
    assert abs((row.previous_secret_expires_at - utcnow()).total_seconds() - 600) < 5


def test_the_tenant_default_secret_is_created_once_and_rotates(api: Api) -> None:
    _, headers = api.tenant()
    first = api.client.get("/v1/webhook-secret", headers=headers).json()
    assert first["secret"].startswith("whsec_")
    assert api.client.get("/v1/webhook-secret", headers=headers).json()["secret"] == first["secret"]
    rotated = api.client.post("/v1/webhook-secret/rotate", headers=headers).json()
    assert rotated["secret"] != first["secret"] and rotated["previous_secret_expires_at"] is not None
    _, other = api.tenant()
    assert api.client.get("/v1/webhook-secret", headers=other).json()["secret"] not in {
        first["secret"],
        rotated["secret"],
    }


def add_deliveries(api: Api, tenant_id: str, endpoint_id: str | None, statuses: list[str]) -> list[str]:
    rows = []
    for index, status in enumerate(statuses):
        row = deliveries.new_row(
            f"evt_{index}_{tenant_id}", "job.succeeded", tenant_id, endpoint_id, PUBLIC_URL, "{}", 0
        )
        row.update(status=status, attempts=8, created_at=utcnow() - timedelta(minutes=len(statuses) - index))
        rows.append(row)
    deliveries.insert_new(api.services.engine, rows)
    return [row["id"] for row in rows]


def test_the_dead_letter_lists_failed_deliveries_by_page(api: Api) -> None:
    tenant_id, headers = api.tenant()
    endpoint = api.create(headers).json()
    ids = add_deliveries(
        api, tenant_id, endpoint["id"], ["failed", "succeeded", "failed", "failed", "pending"]
    )
    other_id, other = api.tenant()
    add_deliveries(api, other_id, None, ["failed"])

    first = api.client.get(
        "/v1/webhook-deliveries", params={"status": "failed", "limit": 2}, headers=headers
    ).json()
    second = api.client.get(
        "/v1/webhook-deliveries",
        params={"status": "failed", "limit": 2, "cursor": first["next_cursor"]},
        headers=headers,
    ).json()

    assert [row["id"] for row in first["data"]] == [ids[3], ids[2]] and first["has_more"] is True
    assert [row["id"] for row in second["data"]] == [ids[0]] and second["has_more"] is False
    shown = first["data"][0]
    assert shown["status"] == "failed" and shown["attempts"] == 8 and shown["endpoint_id"] == endpoint["id"]
    assert "body" not in shown and shown["event_id"].startswith("evt_")
    everything = api.client.get("/v1/webhook-deliveries", params={"limit": 100}, headers=headers).json()
    assert len(everything["data"]) == 5  # the other tenant's delivery is not among them
    for cursor in (ids[0], "dlv_nothing", "not a cursor!"):
        listed = api.client.get("/v1/webhook-deliveries", params={"cursor": cursor}, headers=other)
        assert api.error(listed)["code"] == "invalid_cursor"
    assert (
        api.error(api.client.get(f"/v1/webhook-deliveries/{ids[0]}", headers=other), 404)["code"]
        == "not_found"
    )


def test_redeliver_one_puts_it_back_and_sends_it_at_once(api: Api) -> None:
    tenant_id, headers = api.tenant()
    endpoint = api.create(headers).json()
    failed, pending = add_deliveries(api, tenant_id, endpoint["id"], ["failed", "pending"])

    again = api.client.post(f"/v1/webhook-deliveries/{failed}/redeliver", headers=headers)

    assert again.status_code == 200, again.text
    assert again.json()["status"] == "pending" and again.json()["attempts"] == 0
    assert api.queued_attempts() == [[failed, 0]]
    busy = api.client.post(f"/v1/webhook-deliveries/{pending}/redeliver", headers=headers)
    assert api.error(busy, 409)["code"] == "delivery_pending"
    api.client.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": False}, headers=headers)
    with Session(api.services.engine) as session:
        row = session.get(WebhookDelivery, failed)
        assert row is not None
        row.status = "failed"
        session.add(row)
        session.commit()
    disabled = api.client.post(f"/v1/webhook-deliveries/{failed}/redeliver", headers=headers)
    assert api.error(disabled, 409)["code"] == "webhook_endpoint_disabled"


def test_bulk_redelivery_takes_an_endpoint_and_a_time_range(api: Api) -> None:
    tenant_id, headers = api.tenant()
    endpoint = api.create(headers).json()
    other_endpoint = api.create(headers).json()
    ids = add_deliveries(api, tenant_id, endpoint["id"], ["failed", "failed", "succeeded", "failed"])
    add_deliveries(api, tenant_id, other_endpoint["id"], ["failed"])
    with Session(api.services.engine) as session:
        oldest = session.get(WebhookDelivery, ids[0])
        assert oldest is not None
        since = (oldest.created_at + timedelta(seconds=1)).isoformat()

    answer = api.client.post(
        "/v1/webhook-deliveries/redeliver",
        json={"endpoint_id": endpoint["id"], "since": since},
        headers=headers,
    )

    assert answer.status_code == 200, answer.text
    assert (
        sorted(answer.json()["delivery_ids"]) == sorted([ids[1], ids[3]])
        and answer.json()["redelivered"] == 2
    )
    assert sorted(api.queued_attempts()) == sorted([[ids[1], 0], [ids[3], 0]])
    unknown = {"endpoint_id": "we_nope", "since": since}
    assert api.error(api.client.post("/v1/webhook-deliveries/redeliver", json=unknown, headers=headers), 404)
