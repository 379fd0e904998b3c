"""Kill switches over HTTP: the platform admin's routes, a tenant admin's own, the audit log and
``GET /v1/limits`` (in-process API on SQLite and PostgreSQL, real Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from admin_api_support import TIERS, Api
from api_harness import assert_error, open_api
from sqlmodel import Session
from tests_support import database_url_for

from schemas.tables import ApiKey

ADMIN = "/v1/admin/kill-switches"
OWN = "/v1/kill-switches"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Api]:
    """One API per database for the module (admin_api_support's helpers); tests make their own tenants."""
    tmp = tmp_path_factory.mktemp("kill_switches")
    with open_api(Api, tmp, redis_url, database_url_for(request, tmp), TIERS) as opened:
        yield opened


def post(api: Api, path: str, headers: dict[str, str], **body: Any) -> Any:
    return api.client.post(path, json=body, headers=headers)


def key_id_of(api: Api, tenant_id: str) -> str:
    with Session(api.engine) as session:
        key = session.query(ApiKey).filter_by(tenant_id=tenant_id).first()
        assert key is not None
        return key.id


def limits_ids(api: Api, headers: dict[str, str]) -> set[str]:
    answer = api.client.get("/v1/limits", headers=headers)
    assert answer.status_code == 200, answer.text
    return {switch["id"] for switch in answer.json()["kill_switches"]}


def test_a_tenant_key_gets_403_on_the_platform_routes(api: Api) -> None:
    _, tenant_admin = api.tenant_admin()
    assert_error(post(api, ADMIN, tenant_admin, scope="all"), 403, "insufficient_scope")
    assert_error(api.client.get(ADMIN, headers=tenant_admin), 403, "insufficient_scope")
    assert_error(api.client.delete(f"{ADMIN}/ks_x", headers=tenant_admin), 403, "insufficient_scope")
    _, reader = api.tenant_admin(["read"])
    assert_error(post(api, OWN, reader, scope="all"), 403, "insufficient_scope")


def test_the_platform_admin_sets_lists_and_lifts_a_switch_and_each_change_is_audited(api: Api) -> None:
    platform = api.platform()
    answer = post(api, ADMIN, platform, scope="model", value="emu-b", reason="runaway loop")
    assert answer.status_code == 201, answer.text
    switch = answer.json()
    assert (switch["scope"], switch["value"], switch["tenant_id"], switch["active"]) == (
        "model",
        "emu-b",
        None,
        True,
    )
    assert switch["id"] in {s["id"] for s in api.client.get(ADMIN, headers=platform).json()["data"]}

    lifted = api.client.delete(f"{ADMIN}/{switch['id']}", headers=platform)
    assert lifted.status_code == 200 and lifted.json()["active"] is False and lifted.json()["lifted_by"]
    assert switch["id"] not in {s["id"] for s in api.client.get(ADMIN, headers=platform).json()["data"]}
    history = api.client.get(ADMIN, params={"all": "true"}, headers=platform).json()["data"]
    assert switch["id"] in {s["id"] for s in history}

    [set_entry] = api.audit_rows(target_id=switch["id"], action="kill_switch.set")
    [lift_entry] = api.audit_rows(target_id=switch["id"], action="kill_switch.lifted")
    assert set_entry.actor_key_id == switch["created_by"] and set_entry.before is None
    assert set_entry.after is not None and set_entry.after["reason"] == "runaway loop"
    assert lift_entry.before is not None and lift_entry.before["active"] is True
    assert lift_entry.after is not None and lift_entry.after["active"] is False


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"scope": "tier", "value": "no-such-tier"}, 400, "unknown_tier"),
        ({"scope": "model", "value": "no-such-model"}, 400, "unknown_model"),
        ({"scope": "provider", "value": "no-such-provider"}, 400, "invalid_request"),
        ({"scope": "all", "value": "emu-a"}, 400, "invalid_request"),
        ({"scope": "tenant", "value": "ten_nobody"}, 404, "not_found"),
        ({"scope": "api_key", "value": "key_nobody"}, 404, "not_found"),
        ({"scope": "model", "value": "emu-a", "tenant_id": "ten_nobody"}, 404, "not_found"),
        ({"scope": "galaxy"}, 422, "validation_error"),
        ({"scope": "all", "colour": "red"}, 422, "validation_error"),
    ],
)
def test_bad_switches_are_refused_with_a_stable_code(
    api: Api, body: dict[str, Any], status: int, code: str
) -> None:
    assert_error(post(api, ADMIN, api.platform(), **body), status, code)


def test_the_same_switch_twice_is_a_conflict_naming_the_first(api: Api) -> None:
    platform, (tenant_id, _) = api.platform(), api.tenant_admin()
    first = post(api, ADMIN, platform, scope="tenant", value=tenant_id).json()
    error = assert_error(
        post(api, ADMIN, platform, scope="tenant", value=tenant_id), 409, "kill_switch_exists"
    )
    assert error["kill_switch"] == first["id"]
    assert first["tenant_id"] == tenant_id  # a tenant switch concerns that tenant
    api.client.delete(f"{ADMIN}/{first['id']}", headers=platform)


def test_a_tenant_admin_stops_only_their_own_tenant(api: Api) -> None:
    tenant_id, admin = api.tenant_admin()
    other_id, other_admin = api.tenant_admin()
    everything = post(api, OWN, admin, scope="all", reason="stop us").json()
    assert (everything["scope"], everything["tenant_id"]) == ("all", tenant_id)  # all of *my* tenant
    model = post(api, OWN, admin, scope="model", value="emu-a", tenant_id=tenant_id).json()
    assert model["tenant_id"] == tenant_id
    own_key = post(api, OWN, admin, scope="api_key", value=key_id_of(api, tenant_id)).json()
    assert own_key["tenant_id"] == tenant_id

    assert_error(post(api, OWN, admin, scope="api_key", value=key_id_of(api, other_id)), 404, "not_found")
    assert_error(post(api, OWN, admin, scope="tenant", value=other_id), 404, "not_found")
    assert_error(post(api, OWN, admin, scope="tier", value=api.tier, tenant_id=other_id), 404, "not_found")
    # Another tenant's switch ids do not exist for them, to read or lift.
    assert_error(api.client.delete(f"{OWN}/{everything['id']}", headers=other_admin), 404, "not_found")
    assert api.client.get(OWN, headers=other_admin).json()["data"] == []
    listed = {s["id"] for s in api.client.get(OWN, headers=admin).json()["data"]}
    assert listed == {everything["id"], model["id"], own_key["id"]}

    lifted = api.client.delete(f"{OWN}/{everything['id']}", headers=admin)
    assert lifted.status_code == 200 and lifted.json()["active"] is False
    assert [e.actor_tenant_id for e in api.audit_rows(target_id=everything["id"])] == [tenant_id, tenant_id]


def test_a_stop_the_platform_put_on_a_tenant_is_not_the_tenants_to_lift(api: Api) -> None:
    platform, (tenant_id, admin) = api.platform(), api.tenant_admin()
    stop = post(api, ADMIN, platform, scope="tenant", value=tenant_id, fail_queued=True).json()
    assert_error(api.client.delete(f"{OWN}/{stop['id']}", headers=admin), 404, "not_found")
    assert stop["id"] not in {s["id"] for s in api.client.get(OWN, headers=admin).json()["data"]}
    assert stop["id"] in limits_ids(api, admin)  # but it shows where it applies
    api.client.delete(f"{ADMIN}/{stop['id']}", headers=platform)


def test_limits_show_the_active_switches_that_apply_to_the_caller(api: Api) -> None:
    platform = api.platform()
    tenant_id, admin = api.tenant_admin()
    _, other_admin = api.tenant_admin()
    everyone = post(api, ADMIN, platform, scope="tier", value=api.other_tier).json()
    mine = post(api, ADMIN, platform, scope="model", value="emu-a", tenant_id=tenant_id).json()
    theirs = post(api, OWN, other_admin, scope="all").json()
    try:
        seen = limits_ids(api, admin)
        assert {everyone["id"], mine["id"]} <= seen and theirs["id"] not in seen
        seen_by_other = limits_ids(api, other_admin)
        assert {everyone["id"], theirs["id"]} <= seen_by_other and mine["id"] not in seen_by_other
        assert {everyone["id"], mine["id"], theirs["id"]} <= limits_ids(api, platform)  # every switch
        assert api.client.get("/v1/limits", headers=platform).json()["models"] is not None  # global
        api.client.delete(f"{ADMIN}/{mine['id']}", headers=platform)
        assert mine["id"] not in limits_ids(api, admin)
    finally:
        for switch in (everyone, mine, theirs):
            api.client.delete(f"{ADMIN}/{switch['id']}", headers=platform)
