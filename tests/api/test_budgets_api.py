"""Budgets over HTTP: the platform admin's and a tenant admin's routes, figures, 402 at submission."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from admin_api_support import Api
from admin_api_support import api as admin_api
from api_harness import assert_error
from budget_support import add_usage
from sqlalchemy import delete
from sqlmodel import Session, col, select

from schemas.tables import ApiKey, Usage, WebhookDelivery, WebhookEndpoint, utcnow
from schemas.webhooks import EVENT_TYPES
from workers.budgets.estimate import Charge, to_nano
from workers.budgets.ledger import Hold
from workers.ids import new_id

api = admin_api  # the module's fixture (one API per database), bound by name in each test


def key_of(api: Api, tenant_id: str) -> str:
    with Session(api.engine) as session:
        return session.exec(select(ApiKey.id).where(col(ApiKey.tenant_id) == tenant_id)).first() or ""


def create(api: Api, platform: dict[str, str], tenant_id: str, **body: Any) -> dict[str, Any]:
    response = api.client.post(f"/v1/admin/tenants/{tenant_id}/budgets", json=body, headers=platform)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_tenant_over_its_hard_budget_gets_402_with_the_budget_and_its_reset(api: Api) -> None:
    platform = api.platform()
    tenant_id, headers = api.tenant_admin()
    budget = create(api, platform, tenant_id, name="monthly", limit_usd=0.02, period="month")
    assert api.submit(headers).status_code == 202
    try:
        add_usage(api.engine, tenant_id, 0.02, tier=api.tier)
        api.services.budgets.directory.forget(tenant_id)
        api.services.redis.delete(*api.services.redis.keys(f"{api.settings.key_prefix}:budget:*") or ["none"])
        error = assert_error(api.submit(headers), 402, "budget_exceeded")
        assert error["budget"] == {
            "id": budget["id"],
            "name": "monthly",
            "period": "month",
            "limit_usd": 0.02,
            "limit_tokens": None,
        }
        assert datetime.fromisoformat(error["resets_at"]).day == 1
        batch = {"tier": api.tier, "jobs": [{"messages": [{"role": "user", "content": "hi"}]}]}
        refused = api.client.post("/v1/batches", json=batch, headers=headers)
        assert assert_error(refused, 402, "budget_exceeded")["budget"]["id"] == budget["id"]
    finally:
        with Session(api.engine) as session:
            session.execute(delete(Usage).where(col(Usage.tenant_id) == tenant_id))
            session.commit()


def test_budgets_list_with_their_figures(api: Api) -> None:
    platform = api.platform()
    tenant_id, headers = api.tenant_admin()
    create(api, platform, tenant_id, limit_usd=2.5, limit_tokens=1000, period="day")
    [shown] = api.client.get("/v1/budgets", headers=headers).json()["data"]
    assert (shown["spent_usd"], shown["reserved_usd"], shown["remaining_usd"]) == (0, 0, 2.5)
    assert (shown["spent_tokens"], shown["remaining_tokens"]) == (0, 1000)
    start, resets = datetime.fromisoformat(shown["period_start"]), datetime.fromisoformat(shown["resets_at"])
    assert (resets - start).total_seconds() == 86400
    listed = api.client.get(f"/v1/admin/tenants/{tenant_id}/budgets", headers=platform).json()["data"]
    assert [row["id"] for row in listed] == [shown["id"]]


def test_budget_bodies_are_checked(api: Api) -> None:
    platform = api.platform()
    tenant_id, _ = api.tenant_admin()
    path = f"/v1/admin/tenants/{tenant_id}/budgets"
    for body, status in [
        ({"period": "day"}, 422),  # no limit
        ({"limit_usd": 1, "thresholds": [0, 0.5]}, 422),
        ({"limit_usd": 1, "on_exhausted": "downgrade"}, 422),  # where to?
        ({"limit_usd": 1, "colour": "red"}, 422),
        ({"limit_usd": 1, "tier": "no-such-tier"}, 400),
        ({"limit_usd": 1, "tier": api.tier, "on_exhausted": "downgrade", "downgrade_tier": "embed"}, 400),
    ]:
        assert api.client.post(path, json=body, headers=platform).status_code == status, body


def test_a_tenant_admin_manages_its_keys_budgets_only(api: Api) -> None:
    platform = api.platform()
    tenant_id, headers = api.tenant_admin()
    other_id, other_headers = api.tenant_admin()
    key_id = key_of(api, tenant_id)
    tenant_budget = create(api, platform, tenant_id, limit_usd=5)
    assert_error(
        api.client.post("/v1/budgets", json={"limit_usd": 1}, headers=headers), 403, "insufficient_scope"
    )
    foreign = {"limit_usd": 1, "api_key_id": key_of(api, other_id)}
    assert_error(api.client.post("/v1/budgets", json=foreign, headers=headers), 404, "not_found")
    made = api.client.post("/v1/budgets", json={"limit_usd": 1, "api_key_id": key_id}, headers=headers)
    assert made.status_code == 201 and made.json()["api_key_id"] == key_id
    budget_id = made.json()["id"]
    changed = api.client.patch(f"/v1/budgets/{budget_id}", json={"limit_usd": 3}, headers=headers)
    assert changed.status_code == 200 and changed.json()["limit_usd"] == 3
    # Another tenant's budget, and the tenant's own tenant-level budget, are not the tenant admin's.
    assert_error(
        api.client.patch(f"/v1/budgets/{budget_id}", json={}, headers=other_headers), 404, "not_found"
    )
    assert_error(api.client.delete(f"/v1/budgets/{budget_id}", headers=other_headers), 404, "not_found")
    assert_error(
        api.client.patch(f"/v1/budgets/{tenant_budget['id']}", json={}, headers=headers), 404, "not_found"
    )
    assert api.client.get("/v1/budgets", headers=other_headers).json()["data"] == []
    assert api.client.delete(f"/v1/budgets/{budget_id}", headers=headers).status_code == 204
    actions = [
        (row.action, row.before is not None, row.after is not None)
        for row in api.audit_rows(target_id=budget_id)
    ]
    assert actions == [
        ("budget.created", False, True),
        ("budget.updated", True, True),
        ("budget.deleted", True, False),
    ]
    assert api.audit_rows(target_id=budget_id)[1].after["limit_usd"] == 3  # type: ignore[index]


def test_tenant_keys_get_403_on_the_admin_budget_routes(api: Api) -> None:
    platform = api.platform()
    tenant_id, headers = api.tenant_admin()
    budget = create(api, platform, tenant_id, limit_usd=1)
    for method, path in [
        ("POST", f"/v1/admin/tenants/{tenant_id}/budgets"),
        ("GET", f"/v1/admin/tenants/{tenant_id}/budgets"),
        ("PATCH", f"/v1/admin/budgets/{budget['id']}"),
        ("DELETE", f"/v1/admin/budgets/{budget['id']}"),
    ]:
        body = {"limit_usd": 1} if method in ("POST", "PATCH") else None
        response = api.client.request(method, path, json=body, headers=headers)
        assert_error(response, 403, "insufficient_scope")
    assert (
        api.client.patch(
            f"/v1/admin/budgets/{budget['id']}", json={"name": "x"}, headers=platform
        ).status_code
        == 200
    )
    assert api.client.delete(f"/v1/admin/budgets/{budget['id']}", headers=platform).status_code == 204
    assert_error(api.client.delete(f"/v1/admin/budgets/{budget['id']}", headers=platform), 404, "not_found")


def test_a_threshold_reaches_webhook_endpoints_subscribed_to_it(api: Api) -> None:
    assert "budget.threshold" in EVENT_TYPES
    platform = api.platform()
    tenant_id, _ = api.tenant_admin()
    create(api, platform, tenant_id, limit_usd=1, thresholds=[0.5])
    with Session(api.engine) as session:  # as registered (the SSRF guard would resolve the name)
        now = utcnow()
        for wanted in (["budget.threshold"], ["job.succeeded"]):
            session.add(
                WebhookEndpoint(
                    id=new_id("we"),
                    tenant_id=tenant_id,
                    url="https://hooks.example.com/budget",
                    event_types=wanted,
                    secret="whsec_" + "A" * 32,
                    created_at=now,
                    updated_at=now,
                )
            )
        session.commit()
    budgets = api.services.budgets
    terms = budgets.directory.of_tenant(tenant_id)
    hold = budgets.reserve(terms, "m1", Charge(to_nano(0.6), 1), 60)
    assert isinstance(hold, Hold)
    budgets.settle(hold, Charge(to_nano(0.6), 1))
    with Session(api.engine) as session:
        rows = session.exec(select(WebhookDelivery).where(col(WebhookDelivery.tenant_id) == tenant_id)).all()
    assert [row.event_type for row in rows] == ["budget.threshold"]
