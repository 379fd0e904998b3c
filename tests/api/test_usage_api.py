"""``GET /v1/usage``: grouping by every dimension, CSV, range checks, tenant isolation; the
rollups and the raw rows give the same report. In process, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from api_harness import ApiHarness, assert_error, open_api
from sqlmodel import Session
from tests_support import new_tenant_key
from usage_support import NOVEMBER, SEED, Call, seed

from api.keys import create_platform_key
from workers import store
from workers.cache.results import CachedResult
from workers.usage_report import make_query, run_report


@pytest.fixture
def api(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[ApiHarness]:
    with open_api(
        ApiHarness, tmp_path, redis_url, database_url, {"tier": ["emu-a"], "other_tier": ["emu-b"]}
    ) as api:
        yield api


def tenant_with_seed(api: ApiHarness) -> tuple[str, dict[str, str]]:
    tenant_id, secret = new_tenant_key(api.engine, {"read"})
    seed(api.engine, tenant_id, SEED)
    return tenant_id, {"Authorization": f"Bearer {secret}"}


def report(api: ApiHarness, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = api.client.get("/v1/usage", params={**NOVEMBER, **params}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def by(rows: list[dict[str, Any]], *names: str) -> dict[Any, dict[str, Any]]:
    return {tuple(row[name] for name in names) if len(names) > 1 else row[names[0]]: row for row in rows}


def test_totals_cover_the_range_only(api: ApiHarness) -> None:
    _, headers = tenant_with_seed(api)

    body = report(api, headers)

    assert (body["from"], body["to"], body["group_by"], body["source"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
        [],
        "rollup",
    )
    assert body["totals"] == {
        "jobs": 5,
        "calls": 5,
        "prompt_tokens": 50,
        "completion_tokens": 25,
        "cost_usd": pytest.approx(0.31),
        "cache_hits": 0,
        "cache_savings_usd": 0.0,
    }
    assert [row["calls"] for row in body["rows"]] == [5]


def test_groups_by_each_rollup_dimension(api: ApiHarness) -> None:
    _, headers = tenant_with_seed(api)

    days = by(report(api, headers, group_by="day")["rows"], "day")
    assert {day: row["calls"] for day, row in days.items()} == {
        "2026-11-03": 2,
        "2026-11-04": 2,
        "2026-11-05": 1,
    }
    hours = by(report(api, headers, group_by="hour")["rows"], "hour")
    assert hours["2026-11-03T09:00:00Z"]["calls"] == 2 and len(hours) == 4
    tiers = by(report(api, headers, group_by="tier")["rows"], "tier")
    assert tiers["retry"]["cost_usd"] == pytest.approx(0.04) and tiers["small"]["jobs"] == 4
    models = by(report(api, headers, group_by="model")["rows"], "model")
    assert models["emu-b"]["cost_usd"] == pytest.approx(0.02) and models["emu-a"]["calls"] == 4
    keys = by(report(api, headers, group_by="api_key")["rows"], "api_key")
    assert {key: row["calls"] for key, row in keys.items()} == {None: 1, "key_one": 3, "key_two": 1}
    priorities = by(report(api, headers, group_by="priority")["rows"], "priority")
    assert priorities["batch"]["cost_usd"] == pytest.approx(0.08)
    assert by(report(api, headers, group_by="provider")["rows"], "provider")["emulator"]["jobs"] == 5
    both = report(api, headers, group_by=["day", "model"])
    assert both["source"] == "rollup"
    assert by(both["rows"], "day", "model")[("2026-11-03", "emu-b")]["calls"] == 1


def test_batch_and_metadata_read_the_raw_rows(api: ApiHarness) -> None:
    _, headers = tenant_with_seed(api)

    batches = report(api, headers, group_by="batch")
    assert batches["source"] == "raw"
    assert {batch: row["cost_usd"] for batch, row in by(batches["rows"], "batch").items()} == {
        None: pytest.approx(0.07),
        "batch_1": pytest.approx(0.24),
    }
    teams = report(api, headers, group_by="metadata.team,tier")
    assert {key: row["calls"] for key, row in by(teams["rows"], "metadata.team", "tier").items()} == {
        (None, "small"): 1,
        ("ads", "retry"): 1,
        ("search", "small"): 2,
        ("7", "small"): 1,
    }


def test_the_rollups_and_the_raw_rows_agree(api: ApiHarness) -> None:
    tenant_id, _ = tenant_with_seed(api)
    query = make_query(tenant_id, datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    for dimensions in (["day", "model"], ["hour", "tier", "api_key", "priority", "provider"], []):
        grouped = make_query(tenant_id, query.start, query.end, dimensions)
        rollup, raw = run_report(api.engine, grouped), run_report(api.engine, grouped, "raw")
        assert rollup.source == "rollup" and raw.source == "raw"
        assert rollup.rows == raw.rows and rollup.totals == raw.totals


def test_a_range_not_on_whole_hours_reads_the_raw_rows(api: ApiHarness) -> None:
    _, headers = tenant_with_seed(api)

    body = report(api, headers, **{"from": "2026-11-03T09:35:00Z", "to": "2026-11-04T00:00:00Z"})

    assert body["source"] == "raw" and body["totals"]["calls"] == 1
    assert body["totals"]["cost_usd"] == pytest.approx(0.02)


def test_csv_has_a_header_and_one_line_per_group(api: ApiHarness) -> None:
    _, headers = tenant_with_seed(api)

    response = api.client.get(
        "/v1/usage", params={**NOVEMBER, "group_by": "day"}, headers={**headers, "Accept": "text/csv"}
    )

    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.text)))
    assert lines[0] == [
        "day",
        "jobs",
        "calls",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "cache_hits",
        "cache_savings_usd",
    ]
    assert [line[0] for line in lines[1:]] == ["2026-11-03", "2026-11-04", "2026-11-05"]
    assert lines[1][2] == "2"


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"group_by": "week"}, 400, "invalid_group_by"),
        ({"group_by": "day,metadata.bad key"}, 400, "invalid_group_by"),
        ({"group_by": "metadata."}, 400, "invalid_group_by"),
        ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, 400, "invalid_usage_range"),
        ({"from": "2026-11-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, 400, "invalid_usage_range"),
        ({"from": "2025-01-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, 400, "usage_range_too_long"),
        ({"from": "0001-01-01T00:00:00+05:00"}, 400, "invalid_usage_range"),
        ({"to": "9999-12-31T23:59:59-05:00"}, 400, "invalid_usage_range"),
        ({"from": "yesterday"}, 422, "validation_error"),
        ({"tenant_id": "ten_\x00"}, 422, "validation_error"),
    ],
)
def test_bad_parameters_get_stable_codes(
    api: ApiHarness, params: dict[str, str], status: int, code: str
) -> None:
    response = api.client.get("/v1/usage", params={**NOVEMBER, **params}, headers=api.tenant({"read"}))
    assert_error(response, status, code)


def test_a_tenant_never_sees_another_tenants_figures(api: ApiHarness) -> None:
    owner, _ = tenant_with_seed(api)
    other_headers = api.tenant({"read"})

    mine = report(api, other_headers, group_by="day")
    assert mine["rows"] == [] and mine["totals"]["calls"] == 0
    assert report(api, other_headers, group_by="batch")["rows"] == []
    asked = api.client.get("/v1/usage", params={**NOVEMBER, "tenant_id": owner}, headers=other_headers)
    assert_error(asked, 403, "insufficient_scope")
    assert_error(api.client.get("/v1/usage", params=NOVEMBER), 401, "invalid_api_key")
    assert_error(api.client.get("/v1/usage", headers=api.tenant({"submit"})), 403, "insufficient_scope")


def test_a_platform_admin_reads_any_tenant(api: ApiHarness) -> None:
    owner, _ = tenant_with_seed(api)
    with Session(api.engine) as session:
        secret = create_platform_key(session)
        session.commit()
    platform = {"Authorization": f"Bearer {secret}"}

    assert report(api, platform, tenant_id=owner)["totals"]["calls"] == 5
    assert report(api, platform)["totals"]["calls"] == 0  # its own tenant's, by default
    missing = api.client.get("/v1/usage", params={"tenant_id": f"ten_{uuid.uuid4().hex}"}, headers=platform)
    assert_error(missing, 404, "not_found")


def test_the_default_range_is_this_month_and_counts_exact_cache_hits(api: ApiHarness) -> None:
    tenant_id, secret = new_tenant_key(api.engine, {"submit", "read"})
    headers = {"Authorization": f"Bearer {secret}"}
    seed(api.engine, tenant_id, [Call(datetime.now(UTC), tier=api.tier, cost=0.03)])
    body = {"tier": api.tier, "request": {"messages": [{"role": "user", "content": "Capital of France?"}]}}
    first = api.client.post("/v1/jobs", json=body, headers=headers).json()
    answer = {"id": "c", "object": "chat.completion", "created": 0, "model": "emu-a", "choices": []}
    cached = CachedResult(first["id"], answer, "emu-a", "emulator", cost_usd=0.03)
    api.services.results.store(tenant_id, api.tier, first["cache"]["key"], cached, 60)

    hit = api.client.post("/v1/jobs", json=body, headers=headers)
    assert hit.status_code == 200 and hit.json()["cache"]["saved_usd"] == pytest.approx(0.03)

    totals = api.client.get("/v1/usage", headers=headers).json()["totals"]
    assert totals["cache_hits"] == 1 and totals["cache_savings_usd"] == pytest.approx(0.03)
    assert (totals["jobs"], totals["calls"]) == (2, 1)
    store.cancel_job(api.engine, tenant_id, first["id"])  # no sweep of another test finds it queued
