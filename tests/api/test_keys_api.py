"""A tenant's admin manages its API keys over HTTP, on SQLite and PostgreSQL: the secret shown
once and never listed, revocation and expiry refused at once, rotation's grace, allowed tiers,
``last_used_at``, scopes, and another tenant's keys answering 404."""

from __future__ import annotations

import json
from typing import Any

import admin_api_support
from admin_api_support import Api, bearer, status_within
from api_harness import assert_error
from sqlmodel import Session

from schemas.tables import ApiKey

api = admin_api_support.api  # the shared fixture, by name


def create(api: Api, headers: dict[str, str], **body: Any) -> Any:
    return api.client.post("/v1/keys", json=body, headers=headers)


def test_a_new_key_shows_its_secret_once_and_the_list_never_shows_it(api: Api) -> None:
    tenant_id, admin = api.tenant_admin()

    made = create(api, admin, name="ci", scopes=["submit", "read"])

    assert made.status_code == 201, made.text
    key = made.json()
    assert key["secret"].startswith("sy_") and key["prefix"] == key["secret"][:10]
    assert key["scopes"] == ["read", "submit"] and key["tenant_id"] == tenant_id and key["name"] == "ci"
    listed = api.client.get("/v1/keys", headers=admin).json()["data"]
    assert {entry["id"] for entry in listed} >= {key["id"]}
    text = json.dumps(listed)
    assert key["secret"] not in text and "secret" not in text and "hash" not in text
    shown = api.client.get(f"/v1/keys/{key['id']}", headers=admin).json()
    assert "secret" not in shown and shown["revoked_at"] is None
    assert api.submit(bearer(key["secret"])).status_code == 202
    [entry] = api.audit_rows(action="key.created", target_id=key["id"])
    assert entry.tenant_id == tenant_id and entry.actor_key_id is not None and entry.address


def test_key_bodies_are_checked(api: Api) -> None:
    _, admin = api.tenant_admin()

    assert_error(create(api, admin, scopes=["platform"]), 422, "validation_error")
    assert_error(create(api, admin, scopes=[]), 422, "validation_error")
    assert_error(create(api, admin, colour="blue"), 422, "validation_error")
    assert_error(
        create(api, admin, expires_in_s=60, expires_at="2099-01-01T00:00:00Z"), 422, "validation_error"
    )
    assert_error(create(api, admin, expires_at="2001-01-01T00:00:00Z"), 400, "invalid_request")
    assert_error(create(api, admin, allowed_tiers=["no-such-tier"]), 400, "unknown_tier")


def test_only_admin_keys_manage_keys(api: Api) -> None:
    _, submitter = api.tenant_admin(["submit", "read"])

    assert_error(api.client.get("/v1/keys", headers=submitter), 403, "insufficient_scope")
    assert_error(create(api, submitter), 403, "insufficient_scope")
    assert_error(api.client.get("/v1/keys"), 401, "invalid_api_key")


def test_a_revoked_key_is_refused_within_a_second(api: Api) -> None:
    _, admin = api.tenant_admin()
    key = create(api, admin).json()
    user = bearer(key["secret"])
    assert api.submit(user).status_code == 202  # cached by this process now

    revoked = api.client.delete(f"/v1/keys/{key['id']}", headers=admin)

    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert status_within(lambda: api.client.get("/v1/jobs", headers=user), 401, 1.0) < 1.0
    again = api.client.delete(f"/v1/keys/{key['id']}", headers=admin)
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert len(api.audit_rows(action="key.revoked", target_id=key["id"])) == 1


def test_rotation_keeps_the_old_secret_for_its_grace_then_refuses_it(api: Api) -> None:
    _, admin = api.tenant_admin()
    old = create(api, admin, name="deploy", scopes=["submit", "read"], allowed_tiers=[api.tier]).json()
    assert api.submit(bearer(old["secret"])).status_code == 202

    # A grace of 3 s: long enough that the checks inside it pass on a loaded CI machine.
    rotated = api.client.post(f"/v1/keys/{old['id']}/rotate", json={"grace_s": 3}, headers=admin)

    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["id"] != old["id"] and new["secret"] != old["secret"]
    assert (new["name"], new["scopes"], new["allowed_tiers"]) == ("deploy", ["read", "submit"], [api.tier])
    assert api.submit(bearer(old["secret"])).status_code == 202  # still in its grace
    assert status_within(lambda: api.client.get("/v1/jobs", headers=bearer(old["secret"])), 401, 6.0) > 1.0
    assert api.submit(bearer(new["secret"])).status_code == 202
    refused = api.client.post(f"/v1/keys/{old['id']}/rotate", headers=admin)
    assert_error(refused, 409, "key_not_active")
    [entry] = api.audit_rows(action="key.rotated", target_id=old["id"])
    assert entry.after is not None and entry.after["replaced_by"] == new["id"]
    too_long = api.client.post(f"/v1/keys/{new['id']}/rotate", json={"grace_s": 10**8}, headers=admin)
    assert_error(too_long, 422, "validation_error")


def test_a_key_past_its_expiry_is_refused(api: Api) -> None:
    _, admin = api.tenant_admin()
    key = create(api, admin, expires_in_s=1).json()
    assert key["expires_at"] is not None
    user = bearer(key["secret"])

    assert api.client.get("/v1/jobs", headers=user).status_code == 200

    assert status_within(lambda: api.client.get("/v1/jobs", headers=user), 401, 2.5) > 0.3
    assert "expired" in api.client.get("/v1/jobs", headers=user).json()["error"]["message"]


def test_a_key_submits_only_to_its_allowed_tiers(api: Api) -> None:
    _, admin = api.tenant_admin()
    key = create(api, admin, scopes=["submit", "read"], allowed_tiers=[api.tier]).json()
    user = bearer(key["secret"])

    allowed = api.submit(user)
    refused = api.submit(user, tier=api.other_tier)

    assert allowed.status_code == 202 and allowed.json()["api_key_id"] == key["id"]
    error = assert_error(refused, 403, "tier_not_allowed")
    assert error["allowed_tiers"] == [api.tier]
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": api.other_tier, "messages": [{"role": "user", "content": "hi"}]}}  # fmt: skip
    batch = api.client.post(
        "/v1/batches",
        content=json.dumps(line),
        params={"tier": api.other_tier},
        headers={**user, "Content-Type": "application/jsonl"},
    )
    assert_error(batch, 403, "tier_not_allowed")


def test_last_used_at_moves_when_the_key_is_used(api: Api) -> None:
    _, admin = api.tenant_admin()
    key = create(api, admin).json()
    assert key["last_used_at"] is None

    api.client.get("/v1/jobs", headers=bearer(key["secret"]))

    shown = api.client.get(f"/v1/keys/{key['id']}", headers=admin).json()
    assert shown["last_used_at"] is not None and shown["last_used_at"] >= key["created_at"]
    with Session(api.engine) as session:
        row = session.get(ApiKey, key["id"])
        assert row is not None and row.last_used_at is not None


def test_another_tenants_key_ids_answer_404(api: Api) -> None:
    _, admin = api.tenant_admin()
    _, other_admin = api.tenant_admin()
    theirs = create(api, other_admin).json()

    for method, path in [
        ("GET", f"/v1/keys/{theirs['id']}"),
        ("DELETE", f"/v1/keys/{theirs['id']}"),
        ("POST", f"/v1/keys/{theirs['id']}/rotate"),
    ]:
        assert_error(api.client.request(method, path, headers=admin), 404, "not_found")
    assert theirs["id"] not in json.dumps(api.client.get("/v1/keys", headers=admin).json())
    assert api.submit(bearer(theirs["secret"])).status_code == 202  # untouched
