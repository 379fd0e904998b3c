"""infra/prometheus and infra/grafana: the files parse, have the shape Prometheus and Grafana
expect, every metric they name is one Switchyard exports (read from the registries the API's
``/metrics`` renders, with real Redis and a database behind the collectors) or a rule
records, and the objectives in the rules are the config's. ``promtool`` (Debian's
``prometheus`` package) checks the syntax and runs the rules' unit tests when it is
installed; the rest runs always."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_harness import ApiHarness, open_api
from promql_support import (
    CLUSTER_FAMILIES,
    COUNTERS,
    HISTOGRAMS,
    duration_buckets,
    metric_names,
    sample_names,
    scraped_families,
    variable_metric_names,
)

from schemas.settings import load_settings
from workers.cluster_metrics import cluster_registry
from workers.metrics.exposition import process_registry, render

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "infra" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
DASHBOARD = ROOT / "infra" / "grafana" / "switchyard.json"
CONFIG = ROOT / "infra" / "switchyard.toml"
SEVERITIES = {"page", "ticket", "warning", "info"}
DURATION = re.compile(r"[0-9]+[smhdwy]")


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(ALERTS.read_text())["groups"]
    return groups


def rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[dict[str, str]]:
    """Family name -> type of everything an API's ``GET /metrics`` exports: the counters and
    histograms every process defines, and the cluster-wide gauges."""
    tmp = tmp_path_factory.mktemp("scrape")
    tiers = {"tier": ["emu-a"], "other_tier": ["emu-b"]}
    with open_api(ApiHarness, tmp, redis_url, f"sqlite:///{tmp / 'scrape.db'}", tiers) as api:
        # What GET /metrics renders (api/routes/metrics.py), read without the route's token.
        services = api.services
        cluster = cluster_registry(
            services.settings,
            services.engine,
            services.redis,
            services.limiter,
            services.dispatcher,
            services.results,
            services.budgets,
        )
        yield scraped_families(render(process_registry(), cluster).decode())


def series_names(exported: dict[str, str]) -> set[str]:
    return {sample for name, kind in exported.items() for sample in sample_names(name, kind)}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def constants(record: str) -> dict[str, float]:
    """Tier -> value of a recorded objective (``vector(<number>)`` with a tier label)."""
    found = {}
    for rule in rules():
        if rule.get("record") == record:
            match = re.fullmatch(r"vector\(([0-9.]+)\)", rule["expr"].strip())
            assert match, f"{record} must be a constant: {rule['expr']}"
            found[rule["labels"]["tier"]] = float(match.group(1))
    return found


def test_the_metric_name_reader_finds_names_and_skips_the_rest() -> None:
    expr = (
        'sum by (tier, le) (rate(switchyard_a_total{status="failed", le=~"1|2"}[5m] offset 1d)) '
        "/ on (tier) group_left () a:b:c > bool 1e3 and histogram_quantile(0.9, x_bucket[$__rate_interval])"
    )
    assert metric_names(expr) == {"switchyard_a_total", "a:b:c", "x_bucket"}
    assert variable_metric_names("label_values(switchyard_jobs_accepted_total, tier)") == {
        "switchyard_jobs_accepted_total"
    }


def test_the_api_exports_every_agreed_metric(exported: dict[str, str]) -> None:
    expected = {name: "counter" for name in COUNTERS} | {name: "histogram" for name in HISTOGRAMS}
    assert {name: exported.get(name) for name in expected} == expected
    assert set(CLUSTER_FAMILIES) <= set(exported)


def test_rule_groups_have_the_shape_prometheus_loads() -> None:
    groups = rule_groups()
    names = [group["name"] for group in groups]
    assert len(names) == len(set(names)) and groups
    for rule in rules():
        assert ("alert" in rule) != ("record" in rule), rule
        assert isinstance(rule["expr"], str) and rule["expr"].strip()
        if "record" in rule:
            assert set(rule) <= {"record", "expr", "labels"}
            assert re.fullmatch(r"switchyard:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule["record"]
            continue
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
        assert re.fullmatch(r"Switchyard[A-Za-z0-9]+", rule["alert"])
        assert DURATION.fullmatch(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"]
        assert annotations["runbook"].startswith("docs/observability.md#")
    alerts = [rule["alert"] for rule in rules() if "alert" in rule]
    assert len(alerts) == len(set(alerts))


def test_every_runbook_anchor_is_a_heading_of_the_docs() -> None:
    text = (ROOT / "docs" / "observability.md").read_text()
    anchors = {_anchor(line.lstrip("#").strip()) for line in text.splitlines() if line.startswith("#")}
    wanted = {rule["annotations"]["runbook"].split("#", 1)[1] for rule in rules() if "alert" in rule}
    assert wanted <= anchors, wanted - anchors


def _anchor(heading: str) -> str:
    # GitHub's: lower case, punctuation dropped, spaces to hyphens.
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


def test_the_alerts_the_issue_asks_for_exist() -> None:
    alerts = {rule["alert"]: rule["expr"] for rule in rules() if "alert" in rule}
    uses = {name: metric_names(expr) for name, expr in alerts.items()}
    assert "switchyard_provider_rate_limited_total" in uses["SwitchyardProvider429Storm"]
    assert "switchyard_queue_drain_seconds" in uses["SwitchyardQueueDrainOverLimit"]
    assert "switchyard_webhook_dead_letters" in uses["SwitchyardWebhookDeadLettersGrowing"]
    assert "switchyard_cost_usd_total" in uses["SwitchyardSpendRateSpike"]
    assert "[1d]" in alerts["SwitchyardSpendRateSpike"] and "[1h]" in alerts["SwitchyardSpendRateSpike"]
    for kind, ratio in (("Error", "job_errors"), ("Latency", "job_slow")):
        fast, slow = alerts[f"Switchyard{kind}BudgetFastBurn"], alerts[f"Switchyard{kind}BudgetSlowBurn"]
        assert {f"switchyard:{ratio}:ratio_rate1h", f"switchyard:{ratio}:ratio_rate5m"} <= metric_names(fast)
        assert {f"switchyard:{ratio}:ratio_rate6h", f"switchyard:{ratio}:ratio_rate30m"} <= metric_names(slow)
        assert "14.4" in fast and "6 *" in slow


def test_every_rule_names_only_exported_or_recorded_metrics(exported: dict[str, str]) -> None:
    known = series_names(exported) | recorded_names()
    for rule in rules():
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')} names {unknown}"


def test_every_dashboard_query_names_only_exported_or_recorded_metrics(exported: dict[str, str]) -> None:
    known = series_names(exported) | recorded_names()
    dashboard = json.loads(DASHBOARD.read_text())
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable_metric_names(variable["definition"]) <= known
    exprs = dashboard_exprs()
    assert exprs
    for expr in exprs:
        assert not metric_names(expr) - known, expr


def test_the_dashboard_has_the_shape_grafana_imports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "switchyard" and dashboard["title"] and dashboard["schemaVersion"] >= 30
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"][
            "w"
        ] <= 24
        if panel["type"] != "row":
            assert panel["title"] and panel["targets"] and panel["datasource"]["type"] == "prometheus"
            assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"])


def test_the_dashboard_shows_what_the_issue_lists() -> None:
    used = set().union(*(metric_names(expr) for expr in dashboard_exprs()))
    text = " ".join(dashboard_exprs())
    for name in (
        "switchyard_jobs_accepted_total",
        "switchyard_queue_depth",
        "switchyard_queue_drain_seconds",
        "switchyard_provider_call_seconds_bucket",
        "switchyard_provider_rate_limited_total",
        "switchyard_cache_lookups_total",
        "switchyard_cache_savings_usd_total",
        "switchyard_cost_usd_total",
        "switchyard_ratelimit_requests_headroom",
        "switchyard_webhook_dead_letters",
        "switchyard_budget_spent_usd",
    ):
        assert name in used, name
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (model, le)" in text


def test_the_objectives_in_the_rules_are_the_configs() -> None:
    settings = load_settings(config_file=CONFIG)
    errors = {
        name: tier.slo.error_rate for name, tier in settings.tiers.items() if tier.slo and tier.slo.error_rate
    }
    latency = {
        name: tier.slo.latency_p95_s
        for name, tier in settings.tiers.items()
        if tier.slo and tier.slo.latency_p95_s
    }
    assert errors and latency, "the example config sets an objective of each kind"
    assert constants("switchyard:slo_error_rate:objective") == errors
    assert constants("switchyard:slo_latency_p95_seconds:objective") == latency
    drain = {name: tier.max_queue_seconds for name, tier in settings.tiers.items()}
    assert constants("switchyard:queue_drain_limit_seconds:objective") == drain


def test_latency_objectives_fall_on_a_bucket_the_slow_ratios_read() -> None:
    settings = load_settings(config_file=CONFIG)
    buckets = duration_buckets()
    slow_rules = [
        rule["expr"] for rule in rules() if rule.get("record", "").startswith("switchyard:job_slow:")
    ]
    assert len(slow_rules) == 4  # 5m, 30m, 1h, 6h
    for name, tier in settings.tiers.items():
        if tier.slo is None or tier.slo.latency_p95_s is None:
            continue
        assert tier.slo.latency_p95_s in buckets, (
            f"tier {name}: {tier.slo.latency_p95_s} s is not a bucket bound"
        )
        for expr in slow_rules:
            assert f'tier="{name}"' in expr and f'le="{tier.slo.latency_p95_s}"' in expr


def test_the_scrape_config_reads_the_api_and_several_worker_nodes() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["switchyard-api"]["metrics_path"] == "/metrics"
    workers = [
        target for group in jobs["switchyard-workers"]["static_configs"] for target in group["targets"]
    ]
    assert len(workers) >= 2 and len(set(workers)) == len(workers)
    assert all(re.fullmatch(r"[\w.-]+:[0-9]+", target) for target in [*workers])


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing (apt-get install prometheus); the checks above still ran"
)


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    run = subprocess.run([str(PROMTOOL), "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@needs_promtool
def test_promtool_accepts_the_scrape_config() -> None:
    run = subprocess.run(
        [str(PROMTOOL), "check", "config", "--syntax-only", str(PROMETHEUS / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


@needs_promtool
def test_the_alerts_fire_on_the_series_of_their_unit_tests() -> None:
    run = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(PROMETHEUS / "alerts_test.yml")],
        capture_output=True,
        text=True,
        cwd=PROMETHEUS,
    )
    assert run.returncode == 0, run.stdout + run.stderr
