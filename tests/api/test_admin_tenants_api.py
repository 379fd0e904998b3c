"""The platform admin's tenants over HTTP, on SQLite and PostgreSQL: create (time zone checked),
list by pages, read, change, disable (the tenant's keys refused within a second) and enable,
any tenant's keys; and every /v1/admin route refused to tenant keys, admin scope or not."""

from __future__ import annotations

import re
from typing import Any

import admin_api_support
from admin_api_support import Api, bearer, status_within
from api_harness import assert_error

from schemas.tables import utcnow

api = admin_api_support.api  # the shared fixture, by name


def new_tenant(api: Api, platform: dict[str, str], **body: Any) -> dict[str, Any]:
    name = f"acme-{utcnow().timestamp()}-{len(body)}"
    answer = api.client.post("/v1/admin/tenants", json={"name": name, **body}, headers=platform)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_a_platform_admin_creates_reads_and_changes_tenants(api: Api) -> None:
    platform = api.platform()

    tenant = new_tenant(api, platform, rpm_limit=60, timezone="Europe/Paris")

    assert tenant["id"].startswith("ten_") and tenant["timezone"] == "Europe/Paris"
    assert tenant["rpm_limit"] == 60 and tenant["max_running_jobs"] is None and tenant["disabled_at"] is None
    path = f"/v1/admin/tenants/{tenant['id']}"
    assert api.client.get(path, headers=platform).json() == tenant
    changed = api.client.patch(
        path, json={"rpm_limit": None, "max_running_jobs": 3, "timezone": "UTC"}, headers=platform
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["rpm_limit"], changed.json()["max_running_jobs"], changed.json()["timezone"]) == (
        None,
        3,
        "UTC",
    )
    [created] = api.audit_rows(action="tenant.created", target_id=tenant["id"])
    [updated] = api.audit_rows(action="tenant.updated", target_id=tenant["id"])
    assert created.actor_key_id is not None and created.after is not None and created.after["rpm_limit"] == 60
    assert updated.before is not None and updated.after is not None
    assert (updated.before["max_running_jobs"], updated.after["max_running_jobs"]) == (None, 3)


def test_tenant_bodies_are_checked(api: Api) -> None:
    platform = api.platform()
    taken = new_tenant(api, platform)

    bad_zone = api.client.post(
        "/v1/admin/tenants", json={"name": "x-zone", "timezone": "Mars/Olympus"}, headers=platform
    )
    assert "time zone" in assert_error(bad_zone, 422, "validation_error")["message"]
    extra = api.client.post("/v1/admin/tenants", json={"name": "x-extra", "plan": "gold"}, headers=platform)
    assert_error(extra, 422, "validation_error")
    again = api.client.post("/v1/admin/tenants", json={"name": taken["name"]}, headers=platform)
    assert_error(again, 409, "tenant_name_taken")
    other = new_tenant(api, platform)
    rename = api.client.patch(
        f"/v1/admin/tenants/{other['id']}", json={"name": taken["name"]}, headers=platform
    )
    assert_error(rename, 409, "tenant_name_taken")
    nulled = api.client.patch(f"/v1/admin/tenants/{other['id']}", json={"timezone": None}, headers=platform)
    assert_error(nulled, 400, "invalid_request")
    assert_error(api.client.get("/v1/admin/tenants/ten_nothing", headers=platform), 404, "not_found")


def test_tenants_list_in_pages(api: Api) -> None:
    platform = api.platform()
    made = [new_tenant(api, platform)["id"] for _ in range(3)]

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.client.get("/v1/admin/tenants", params=params, headers=platform).json()
        seen += [tenant["id"] for tenant in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break

    assert set(made) <= set(seen) and len(seen) == len(set(seen))
    assert seen.index(made[2]) < seen.index(made[0])  # newest first
    bad = api.client.get("/v1/admin/tenants", params={"cursor": "ten_nothing"}, headers=platform)
    assert_error(bad, 400, "invalid_cursor")


def test_a_disabled_tenants_keys_are_refused_within_a_second_and_enabling_restores_them(api: Api) -> None:
    platform = api.platform()
    tenant_id, user = api.tenant_admin()
    assert api.submit(user).status_code == 202  # the key is in this process's cache now

    disabled = api.client.post(f"/v1/admin/tenants/{tenant_id}/disable", headers=platform)

    assert disabled.status_code == 200 and disabled.json()["disabled_at"] is not None
    assert status_within(lambda: api.submit(user), 403, 1.0) < 1.0
    assert_error(api.client.get("/v1/jobs", headers=user), 403, "tenant_disabled")
    enabled = api.client.post(f"/v1/admin/tenants/{tenant_id}/enable", headers=platform)
    assert enabled.status_code == 200 and enabled.json()["disabled_at"] is None
    assert status_within(lambda: api.submit(user), 202, 1.0) < 1.0
    actions = [entry.action for entry in api.audit_rows(target_id=tenant_id)]
    assert actions == ["tenant.created", "tenant.disabled", "tenant.enabled"]


def test_the_platform_tenant_cannot_be_disabled(api: Api) -> None:
    platform = api.platform()
    me = api.client.get("/v1/audit", params={"action": "key.created", "limit": 1}, headers=platform).json()
    platform_tenant = me["data"][0]["tenant_id"]

    refused = api.client.post(f"/v1/admin/tenants/{platform_tenant}/disable", headers=platform)

    assert_error(refused, 400, "invalid_request")


def test_a_platform_admin_manages_any_tenants_keys(api: Api) -> None:
    platform = api.platform()
    tenant_id, _ = api.tenant_admin()
    keys = f"/v1/admin/tenants/{tenant_id}/keys"

    made = api.client.post(keys, json={"name": "ops", "scopes": ["submit"]}, headers=platform)

    assert made.status_code == 201, made.text
    key = made.json()
    assert key["tenant_id"] == tenant_id and api.submit(bearer(key["secret"])).status_code == 202
    listed = api.client.get(keys, headers=platform).json()["data"]
    assert key["id"] in {entry["id"] for entry in listed} and len(listed) == 2
    rotated = api.client.post(f"{keys}/{key['id']}/rotate", json={"grace_s": 0}, headers=platform).json()
    assert status_within(lambda: api.submit(bearer(key["secret"])), 401, 1.0) < 1.0
    assert api.submit(bearer(rotated["secret"])).status_code == 202
    revoked = api.client.delete(f"{keys}/{rotated['id']}", headers=platform)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    other_id, _ = api.tenant_admin()
    wrong = api.client.delete(f"/v1/admin/tenants/{other_id}/keys/{key['id']}", headers=platform)
    assert_error(wrong, 404, "not_found")
    assert_error(api.client.get("/v1/admin/tenants/ten_nothing/keys", headers=platform), 404, "not_found")
    assert_error(
        api.client.post(keys, json={"scopes": ["platform"]}, headers=platform), 422, "validation_error"
    )


def admin_routes(api: Api) -> list[tuple[str, str]]:
    """Every (method, path) of the app's route table under /v1/admin (its OpenAPI document, which
    lists every included router's routes), path parameters filled with ids of nothing."""
    paths = api.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return sorted(
        (method.upper(), re.sub(r"\{[^}]+\}", "x_nothing", path))
        for path, operations in paths.items()
        if path.startswith("/v1/admin")
        for method in operations
    )


def test_every_admin_route_refuses_tenant_keys_even_with_the_admin_scope(api: Api) -> None:
    _, tenant_admin = api.tenant_admin(["admin", "submit", "read"])
    routes = admin_routes(api)
    assert len(routes) >= 9  # tenants and their keys at least; budgets and kill switches join here

    for method, path in routes:
        answer = api.client.request(method, path, headers=tenant_admin, json={})
        assert_error(answer, 403, "insufficient_scope")
        assert_error(api.client.request(method, path, json={}), 401, "invalid_api_key")
