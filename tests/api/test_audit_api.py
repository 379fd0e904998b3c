"""The audit log: one entry per admin change, read through GET /v1/audit with filters and a
cursor (a tenant's admin sees its own tenant's entries, the platform admin all), never a
secret in any row, and a table that refuses UPDATE and DELETE on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import admin_api_support
import pytest
from admin_api_support import Api
from api_harness import assert_error
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from schemas.spend_tables import AuditEntry
from schemas.tables import ApiKey, TenantWebhookSecret, utcnow
from workers import audit
from workers.audit import CLI
from workers.db import session_scope
from workers.webhooks import deliveries

api = admin_api_support.api  # the shared fixture, by name

PUBLIC_URL = "https://93.184.216.34/hooks"  # a public literal: no DNS needed, never called here


def read(api: Api, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    answer = api.client.get("/v1/audit", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_tenants_read_their_own_entries_and_the_platform_admin_reads_all(api: Api) -> None:
    platform = api.platform()
    mine, admin = api.tenant_admin()
    theirs, other = api.tenant_admin()
    made = api.client.post("/v1/keys", json={"name": "a"}, headers=admin).json()
    api.client.post("/v1/keys", json={"name": "b"}, headers=other)

    own = read(api, admin, limit=200)["data"]
    everything = read(api, platform, limit=200, action="key.created")["data"]
    narrowed = read(api, platform, tenant_id=theirs)["data"]

    assert own and {entry["tenant_id"] for entry in own} == {mine}
    assert made["id"] in {entry["target_id"] for entry in own}
    assert {mine, theirs} <= {entry["tenant_id"] for entry in everything}
    assert narrowed and {entry["tenant_id"] for entry in narrowed} == {theirs}
    assert read(api, admin, tenant_id=theirs)["data"] == []  # a tenant cannot widen its view
    _, reader = api.tenant_admin(["read", "submit"])
    assert_error(api.client.get("/v1/audit", headers=reader), 403, "insufficient_scope")


def test_filters_and_the_cursor(api: Api) -> None:
    tenant_id, admin = api.tenant_admin()
    key = api.client.post("/v1/keys", json={}, headers=admin).json()
    api.client.post(f"/v1/keys/{key['id']}/rotate", json={"grace_s": 0}, headers=admin)
    api.client.delete(f"/v1/keys/{key['id']}", headers=admin)
    api.client.delete("/v1/cache", headers=admin)
    actor = api.audit_rows(action="key.created", target_id=key["id"])[0].actor_key_id

    assert [e["action"] for e in read(api, admin, action="key.*")["data"]] == [
        "key.revoked",
        "key.rotated",
        "key.created",
        "key.created",  # the tenant's first key, made by the CLI
    ]
    assert [e["action"] for e in read(api, admin, target_type="cache")["data"]] == ["cache.cleared"]
    by_actor = read(api, admin, actor_key_id=actor)["data"]
    assert {e["action"] for e in by_actor} == {"key.created", "key.rotated", "key.revoked", "cache.cleared"}
    assert read(api, admin, **{"from": (utcnow() + timedelta(minutes=1)).isoformat()})["data"] == []
    assert len(read(api, admin, to=(utcnow() + timedelta(minutes=1)).isoformat())["data"]) == 6
    pages, cursor = [], None
    while True:
        page = read(api, admin, limit=2, **({"cursor": cursor} if cursor else {}))
        pages.append([entry["id"] for entry in page["data"]])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    ids = [entry_id for page_ids in pages for entry_id in page_ids]
    assert [len(page_ids) for page_ids in pages] == [2, 2, 2] and ids == sorted(ids, key=int, reverse=True)
    assert_error(api.client.get("/v1/audit", params={"cursor": "abc"}, headers=admin), 400, "invalid_cursor")
    entry = read(api, admin, target_type="cache")["data"][0]
    assert entry["tenant_id"] == tenant_id and entry["after"]["deleted"] == 0 and entry["address"]


def test_no_secret_ever_reaches_an_audit_row(api: Api) -> None:
    platform = api.platform()
    tenant_id, admin = api.tenant_admin()
    key = api.client.post("/v1/keys", json={"name": "rotating"}, headers=admin).json()
    rotated = api.client.post(f"/v1/keys/{key['id']}/rotate", headers=admin).json()
    other = api.client.post(f"/v1/admin/tenants/{tenant_id}/keys", json={}, headers=platform).json()
    endpoint = api.client.post("/v1/webhook-endpoints", json={"url": PUBLIC_URL}, headers=admin).json()
    api.client.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"description": "x"}, headers=admin)
    turned = api.client.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=admin).json()
    api.client.get("/v1/webhook-secret", headers=admin)
    tenant_secret = api.client.post("/v1/webhook-secret/rotate", headers=admin).json()
    api.client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=admin)

    with Session(api.engine) as session:
        rows = session.exec(select(AuditEntry).where(AuditEntry.tenant_id == tenant_id)).all()
        hashes = [row.key_hash for row in session.exec(select(ApiKey).where(ApiKey.tenant_id == tenant_id))]
        old_secret = session.get(TenantWebhookSecret, tenant_id)
    dumped = json.dumps([row.model_dump(mode="json") for row in rows])
    secrets = [key["secret"], rotated["secret"], other["secret"], endpoint["secret"], turned["secret"]]
    secrets += [tenant_secret["secret"], *hashes]
    assert old_secret is not None and old_secret.previous_secret is not None
    for secret in [*secrets, old_secret.previous_secret]:
        assert secret[6:] not in dumped
    actions = {row.action for row in rows}
    assert {"key.created", "key.rotated", "webhook_endpoint.created", "webhook_endpoint.updated"} <= actions
    assert {
        "webhook_endpoint.secret_rotated",
        "webhook_secret.rotated",
        "webhook_endpoint.deleted",
    } <= actions


@pytest.fixture
def entry_id(engine: Engine) -> int:
    with session_scope(engine) as session:
        entry = audit.record(session, CLI, "tenant.updated", "tenant", "ten_x", None, {"a": 1}, {"a": 2})
        session.flush()
        assert entry.id is not None
        return entry.id


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET action = 'forged' WHERE id = :id", "DELETE FROM audit_log WHERE id = :id"],
)
def test_the_audit_table_refuses_updates_and_deletes(engine: Engine, entry_id: int, statement: str) -> None:
    with pytest.raises(DBAPIError, match=r"append-only|audit"), engine.begin() as connection:
        connection.execute(text(statement), {"id": entry_id})
    with Session(engine) as session:
        row = session.get(AuditEntry, entry_id)
        assert row is not None and row.action == "tenant.updated"


def test_a_rejected_change_leaves_no_entry(api: Api) -> None:
    _, admin = api.tenant_admin()
    before = len(read(api, admin, limit=200)["data"])

    refused = api.client.post("/v1/keys", json={"allowed_tiers": ["nope"]}, headers=admin)

    assert_error(refused, 400, "unknown_tier")
    assert len(read(api, admin, limit=200)["data"]) == before


def test_redeliveries_are_entries(api: Api) -> None:
    tenant_id, admin = api.tenant_admin()
    endpoint = api.client.post("/v1/webhook-endpoints", json={"url": PUBLIC_URL}, headers=admin).json()
    rows = []
    for index in range(2):
        row = deliveries.new_row(
            f"evt_{index}_{tenant_id}", "job.failed", tenant_id, endpoint["id"], PUBLIC_URL, "{}", 0
        )
        row.update(status="failed", attempts=8, created_at=utcnow() - timedelta(minutes=2 - index))
        rows.append(row)
    deliveries.insert_new(api.engine, rows)

    one = api.client.post(f"/v1/webhook-deliveries/{rows[0]['id']}/redeliver", headers=admin)
    since = (utcnow() - timedelta(hours=1)).isoformat()
    bulk = api.client.post(
        "/v1/webhook-deliveries/redeliver",
        json={"endpoint_id": endpoint["id"], "since": since},
        headers=admin,
    )

    assert one.status_code == 200 and bulk.status_code == 200, bulk.text
    single, ranged = read(api, admin, action="delivery.redelivered")["data"][::-1]
    assert (single["target_type"], single["target_id"]) == ("webhook_delivery", rows[0]["id"])
    assert (ranged["target_type"], ranged["target_id"]) == ("webhook_endpoint", endpoint["id"])
    assert ranged["after"]["redelivered"] == bulk.json()["redelivered"] == 1
