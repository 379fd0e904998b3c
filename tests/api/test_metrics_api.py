"""GET /metrics on the API: open or behind metrics.token, the submission counters, the cluster
gauges (budgets, dead letters, kill switches, limiter and queues), and no tenant label."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jobs_api_support
from api_harness import assert_error
from budget_support import add_budget
from jobs_api_support import Api
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session
from tests_support import new_tenant_key

from schemas.kill_switches import KillSwitchCreate
from schemas.tables import WebhookDelivery, utcnow
from workers import kill_switches
from workers.audit import CLI
from workers.ids import new_id
from workers.keys import RedisKeys

api, make_api = jobs_api_support.api, jobs_api_support.make_api  # the shared fixtures, by name

CLUSTER_GAUGES = {
    "switchyard_webhook_dead_letters",
    "switchyard_kill_switches_active",
    "switchyard_queue_depth",
    "switchyard_budget_spent_usd",
    "switchyard_budget_remaining_usd",
    "switchyard_budget_limit_usd",
}


def scrape(api: Api, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of GET /metrics: (name, sorted labels) -> value."""
    response = api.client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_answer_with_no_key_and_carry_the_cluster_gauges(api: Api) -> None:
    names = {name for name, _ in scrape(api)}
    assert CLUSTER_GAUGES - {n for n in CLUSTER_GAUGES if n.startswith("switchyard_budget")} <= names


def test_a_metrics_token_is_required_once_configured(make_api: Callable[..., Api]) -> None:
    guarded = make_api(metrics={"token": "scrape-me"})
    assert_error(guarded.client.get("/metrics"), 401, "invalid_api_key")
    assert_error(
        guarded.client.get("/metrics", headers={"Authorization": "Bearer nope"}), 401, "invalid_api_key"
    )
    assert scrape(guarded, Authorization="Bearer scrape-me")


def test_submissions_count_as_submitted_then_accepted_or_refused(api: Api) -> None:
    headers = api.tenant()
    before = scrape(api)
    assert api.submit(headers).status_code == 202
    assert api.submit(headers).status_code == 202
    assert_error(api.submit(headers, tier="no-such-tier"), 400, "unknown_tier")
    after = scrape(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("switchyard_jobs_submitted_total", tier=api.tier, priority="live") == 2
    assert delta("switchyard_jobs_accepted_total", tier=api.tier, priority="live") == 2
    # An unknown tier is counted under "unknown": a client's typo makes no new series.
    assert delta("switchyard_jobs_submitted_total", tier="unknown", priority="live") == 1
    assert delta("switchyard_jobs_refused_total", tier="unknown", code="unknown_tier") == 1
    assert delta("switchyard_jobs_accepted_total", tier="unknown", priority="live") == 0


def test_budgets_and_dead_letters_are_read_at_scrape_time(api: Api) -> None:
    tenant_id, _ = new_tenant_key(api.engine)
    budget = add_budget(api.engine, api.settings, tenant_id, name="metrics", limit_usd=5.0)
    before = value(scrape(api), "switchyard_webhook_dead_letters")
    _dead_letter(api, tenant_id)
    samples = scrape(api)
    labels = {"budget": budget.id, "period": "month"}
    assert value(samples, "switchyard_budget_limit_usd", **labels) == 5.0
    assert value(samples, "switchyard_budget_spent_usd", **labels) == 0.0
    assert value(samples, "switchyard_budget_remaining_usd", **labels) == 5.0
    assert value(samples, "switchyard_webhook_dead_letters") == before + 1


def test_no_metric_carries_a_tenant_label(api: Api) -> None:
    tenant_id, secret = new_tenant_key(api.engine)
    add_budget(api.engine, api.settings, tenant_id, name="labels", limit_usd=1.0)
    assert api.submit({"Authorization": f"Bearer {secret}"}).status_code == 202
    for name, labels in scrape(api):
        assert "tenant" not in dict(labels), name
        assert tenant_id not in dict(labels).values(), name


def _dead_letter(api: Api, tenant_id: str) -> None:
    fields: dict[str, Any] = {
        "id": new_id("whd"),
        "tenant_id": tenant_id,
        "event_id": new_id("evt"),
        "event_type": "job.succeeded",
        "url": "https://example.com/hook",
        "dedupe_key": new_id("dk"),
        "body": "{}",
        "status": "failed",
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    with Session(api.engine) as session:
        session.add(WebhookDelivery(**fields))
        session.commit()


def test_the_active_kill_switches_are_counted_until_lifted(api: Api) -> None:
    keys = RedisKeys(api.settings.key_prefix)
    before = value(scrape(api), "switchyard_kill_switches_active")
    with Session(api.engine, expire_on_commit=False) as session:
        spec = KillSwitchCreate.model_validate(
            {"scope": "tier", "value": api.other_tier, "reason": "metrics test"}
        )
        switch = kill_switches.set_switch(session, api.redis, keys, api.settings, CLI, spec)
    try:
        assert value(scrape(api), "switchyard_kill_switches_active") == before + 1
    finally:
        with Session(api.engine, expire_on_commit=False) as session:
            kill_switches.lift_switch(session, api.redis, keys, CLI, switch.id)
    assert value(scrape(api), "switchyard_kill_switches_active") == before
