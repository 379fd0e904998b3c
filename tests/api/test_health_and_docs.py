"""Probes, the OpenAPI schema and the interactive docs, served with no asset from elsewhere."""

from __future__ import annotations

import re

import jobs_api_support
import pytest
from api_harness import assert_error
from jobs_api_support import Api

api = jobs_api_support.api  # the shared fixtures, by name


def test_healthz_answers_200(api: Api) -> None:
    response = api.client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_answers_200_with_checks(api: Api) -> None:
    response = api.client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": True, "redis": True}}


def test_docs_and_openapi_are_served(api: Api) -> None:
    docs = api.client.get("/docs")
    schema = api.client.get("/openapi.json")

    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    assert schema.status_code == 200
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/cancel"} <= set(schema.json()["paths"])


@pytest.mark.parametrize(("page", "library"), [("/docs", "SwaggerUIBundle"), ("/redoc", "Redoc")])
def test_the_docs_pages_use_only_assets_the_api_serves(api: Api, page: str, library: str) -> None:
    html = api.client.get(page)

    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    assert "://" not in html.text  # no CDN and no font service: works on a machine offline
    assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    scripts = [url for url in assets if url.endswith(".js")]
    assert scripts and all(url.startswith("/docs/assets/") for url in assets)
    for url in assets:
        served = api.client.get(url)
        assert served.status_code == 200 and len(served.content) > 1_000, url
    assert library in api.client.get(scripts[0]).text
    assert "/openapi.json" in html.text and api.client.get("/openapi.json").status_code == 200


def test_unknown_route_answers_404_with_error_body(api: Api) -> None:
    assert_error(api.client.get("/v1/nothing-here"), 404, "not_found")
