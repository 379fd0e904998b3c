"""API keys at the jobs API: tenant isolation, scopes, unknown keys, keys stored as SHA-256."""

from __future__ import annotations

import hashlib

import jobs_api_support
import pytest
from api_harness import assert_error
from jobs_api_support import Api
from sqlalchemy import text
from tests_support import new_tenant_key

api, auth = jobs_api_support.api, jobs_api_support.auth  # the shared fixtures, by name


def test_tenant_cannot_see_or_cancel_another_tenants_job(api: Api, auth: dict[str, str]) -> None:
    job_id = api.submit(auth).json()["id"]
    other = api.tenant()
    own = api.submit(other).json()["id"]

    assert_error(api.client.get(f"/v1/jobs/{job_id}", headers=other), 404, "not_found")
    assert_error(api.client.post(f"/v1/jobs/{job_id}/cancel", headers=other), 404, "not_found")
    # Their job's id is no cursor of ours: a bad cursor, not a missing list.
    assert_error(api.client.get("/v1/jobs", params={"cursor": job_id}, headers=other), 400, "invalid_cursor")
    listed = api.client.get("/v1/jobs", headers=other).json()["data"]
    assert [job["id"] for job in listed] == [own]
    assert api.client.get(f"/v1/jobs/{job_id}", headers=auth).json()["status"] == "queued"


def test_read_only_key_cannot_submit(api: Api) -> None:
    reader = api.tenant({"read"})

    error = assert_error(api.submit(reader), 403, "insufficient_scope")

    assert error["scope"] == "submit"
    assert api.client.get("/v1/jobs", headers=reader).status_code == 200


def test_submit_only_key_cannot_read(api: Api) -> None:
    submitter = api.tenant({"submit"})
    job_id = api.submit(submitter).json()["id"]

    assert_error(api.client.get(f"/v1/jobs/{job_id}", headers=submitter), 403, "insufficient_scope")
    assert_error(api.client.get("/v1/jobs", headers=submitter), 403, "insufficient_scope")


def test_admin_key_may_submit_and_read(api: Api) -> None:
    admin = api.tenant({"admin"})
    job_id = api.submit(admin).json()["id"]

    assert api.client.get(f"/v1/jobs/{job_id}", headers=admin).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sy_not-a-real-key"},
        {"Authorization": "Bearer not-even-a-switchyard-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "unknown", "foreign", "basic", "empty"],
)
def test_missing_or_unknown_key_answers_401(api: Api, headers: dict[str, str]) -> None:
    assert_error(api.client.post("/v1/jobs", json=api.body(), headers=headers), 401, "invalid_api_key")
    assert_error(api.client.get("/v1/jobs", headers=headers), 401, "invalid_api_key")


def test_keys_are_stored_only_as_sha256(api: Api) -> None:
    tenant_id, secret = new_tenant_key(api.engine)

    with api.engine.connect() as connection:
        rows = (
            connection.execute(text("SELECT * FROM api_keys WHERE tenant_id = :t"), {"t": tenant_id})
            .mappings()
            .all()
        )

    assert len(rows) == 1
    row = rows[0]
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    for column, value in row.items():
        assert secret not in str(value), column
    assert api.client.get("/v1/jobs", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
