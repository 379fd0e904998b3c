"""Reading and listing batches and files at the API; another tenant's do not exist."""

from __future__ import annotations

import batches_api_support
from api_harness import assert_error
from batches_api_support import Api

api, auth = batches_api_support.api, batches_api_support.auth  # the shared fixtures, by name


def test_list_pages_with_after_as_openai(api: Api) -> None:
    auth = api.tenant()
    ids = [api.create(auth, 1)["id"] for _ in range(3)]
    first = api.get("/v1/batches", auth, limit=2).json()
    assert [b["id"] for b in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True and first["first_id"] == ids[2] and first["last_id"] == ids[1]
    second = api.get("/v1/batches", auth, limit=2, after=first["last_id"]).json()
    assert [b["id"] for b in second["data"]] == [ids[0]] and second["has_more"] is False
    # An id that is not one of the caller's batches is a bad cursor, not a missing list.
    for after in (api.create(api.tenant(), 1)["id"], "batch_nothing", "not an id"):
        error = assert_error(api.get("/v1/batches", auth, after=after), 400, "invalid_cursor")
        assert error["param"] == "after"


def test_another_tenants_batch_and_files_do_not_exist(api: Api, auth: dict[str, str]) -> None:
    batch = api.create(auth, 1)
    upload = api.client.post(
        "/v1/files", files={"file": ("a", b"{}")}, data={"purpose": "batch"}, headers=auth
    )
    other = api.tenant()
    for path in (
        f"/v1/batches/{batch['id']}",
        f"/v1/batches/{batch['id']}/output",
        f"/v1/batches/{batch['id']}/errors",
    ):
        assert_error(api.get(path, other), 404, "not_found")
    assert_error(api.client.post(f"/v1/batches/{batch['id']}/cancel", headers=other), 404, "not_found")
    file_id = upload.json()["id"]
    assert_error(api.get(f"/v1/files/{file_id}", other), 404, "not_found")
    assert_error(api.get(f"/v1/files/{file_id}/content", other), 404, "not_found")
    body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    assert_error(api.client.post("/v1/batches", json=body, headers=other), 404, "not_found")
    assert api.get("/v1/batches", other).json()["data"] == []
    assert_error(api.get(f"/v1/batches/{batch['id']}", {}), 401, "invalid_api_key")
