"""The dashboard in a real browser (headless Debian Chromium driven by Selenium) on the running
stack, with real jobs: successes, retries after 503s, a permanent failure, an exact-cache hit,
a webhook dead letter, a budget and a kill switch. Every panel shows the figures the database
holds, the failed job's link opens its page with its timeline, and the browser logs no error.
``switchyard top --once`` shows the same figures in the terminal.

Selenium uses the installed /usr/bin/chromedriver and /usr/bin/chromium, never Selenium
Manager (SE_OFFLINE): nothing is downloaded. Without them the browser test is skipped, except
where ``SWITCHYARD_REQUIRE_BROWSER`` is set (.ci/run installs them and sets it).
``SWITCHYARD_DASHBOARD_SCREENSHOTS=<dir>`` also saves the two pages' screenshots there (docs/).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from e2e_stack import Stack
from sqlalchemy import func, select
from sqlmodel import Session
from tests_support import new_tenant_key

from api.keys import create_platform_key
from infra.launch import free_port
from workers.dashboard_queries import percentile
from workers.db import make_engine
from workers.store import JOBS
from workers.usage_rollups import ROLLUPS
from workers.usage_sources import USAGE

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1440,1500",
)
PANELS = (
    "throughput",
    "errors",
    "cache",
    "spend",
    "queues",
    "latency",
    "limiter",
    "webhooks",
    "kill-switches",
    "failed",
)


# Every figure, row count and panel of the page in one synchronous read: a refresh cannot land between.
SNAPSHOT = """
const figures = {}, rows = {}, panels = {};
document.querySelectorAll("[data-figure]").forEach((e) => { figures[e.dataset.figure] = e.dataset.value; });
document.querySelectorAll("[data-row]").forEach((e) => {
  rows[e.dataset.row] = (rows[e.dataset.row] || 0) + 1;
});
for (const id of arguments[0]) panels[id] = document.getElementById(id).textContent.trim().length;
const tiers = [...document.querySelectorAll('[data-row="tiers"] td:first-child')].map((e) => e.textContent);
return { figures, rows, panels, tiers, generatedAt: document.body.dataset.generatedAt };
"""


@dataclass
class Scene:
    """The tenant whose jobs the pages show."""

    tenant_id: str
    key: str
    failed_id: str
    job_ids: list[str]


@pytest.fixture(scope="module")
def scene(stack: Stack) -> Iterator[Scene]:
    """A tenant's realistic minute of work, ended (dead letter included) before the pages open."""
    stack.emulator("DELETE", "/emulator/faults")
    engine = make_engine(stack.settings)
    tenant_id, key = new_tenant_key(engine, {"submit", "read", "admin"})
    with Session(engine) as session:
        platform_key = create_platform_key(session)
        session.commit()
    engine.dispose()
    budget = {"name": "daily", "period": "day", "limit_usd": 0.01}
    created = stack.post(f"/v1/admin/tenants/{tenant_id}/budgets", platform_key, json=budget)
    assert created.status_code == 201, created.text
    topics = ("invoices", "refunds", "shipping", "returns", "warranty", "billing", "login", "exports")
    jobs = [stack.submit("small", f"Summarise the {topic} FAQ.", key, cache="exact") for topic in topics]
    stack.emulator(
        "POST", "/emulator/faults", json={"model": "emu-retry", "responses": [503, 503], "mode": "sequence"}
    )
    dead_hook = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: its webhook gives up
    body: dict[str, Any] = {"tier": "retry", "cache": "off", "callback_url": dead_hook}
    body["request"] = {"messages": [{"role": "user", "content": "A job that meets two 503s first."}]}
    posted = stack.post("/v1/jobs", key, json=body)
    assert posted.status_code == 202, posted.text
    jobs.append(posted.json())
    stack.emulator(
        "POST", "/emulator/faults", json={"model": "emu-bad", "responses": [400], "mode": "always"}
    )
    failed = stack.submit("bad", "A job the provider refuses.", key)
    ended = [stack.wait_final(job["id"], key) for job in [*jobs, failed]]
    assert [job["status"] for job in ended].count("succeeded") == len(jobs), ended
    assert ended[-1]["status"] == "failed"
    hit = stack.post("/v1/jobs", key, json={"tier": "small", "cache": "exact", "request": jobs[0]["request"]})
    assert hit.status_code == 200 and hit.json()["cache"]["hit"] == "exact", hit.text
    switch = {"scope": "model", "value": "emu-slow", "reason": "provider incident"}
    assert stack.post("/v1/kill-switches", key, json=switch).status_code == 201
    _wait_for_dead_letter(stack, key)
    yield Scene(tenant_id, key, failed["id"], [job["id"] for job in jobs])
    stack.emulator("DELETE", "/emulator/faults")


def _wait_for_dead_letter(stack: Stack, key: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if stack.get("/v1/webhook-deliveries", key, params={"status": "failed"}).json()["data"]:
            return
        time.sleep(0.3)
    raise AssertionError("the webhook delivery never gave up")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium through the installed chromedriver, logging the console."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        reason = "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
        if os.environ.get("SWITCHYARD_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager, if ever asked, must not download
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Any, timeout: float = 20.0) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout, 0.1, ignored_exceptions=[StaleElementReferenceException])
    return wait.until(condition)


def _sign_in(driver: Any, url: str, key: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    field = _wait(
        driver,
        lambda d: d.find_element(By.ID, "login-key").is_displayed() and d.find_element(By.ID, "login-key"),
    )
    field.send_keys(key)
    driver.find_element(By.ID, "login-submit").click()
    _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))


def _database_figures(stack: Stack, scene: Scene, generated_at: datetime) -> dict[str, Any]:
    """What the page should show, read from the rows."""
    engine = make_engine(stack.settings)
    day = generated_at.replace(hour=0, minute=0, second=0, microsecond=0)
    with engine.connect() as connection:
        latencies = connection.execute(
            select(USAGE.c.model, USAGE.c.latency_ms).where(
                USAGE.c.tenant_id == scene.tenant_id,
                USAGE.c.created_at >= generated_at - timedelta(minutes=15),
            )
        ).all()
        ended = connection.execute(
            select(func.count()).where(
                JOBS.c.tenant_id == scene.tenant_id,
                JOBS.c.finished_at >= generated_at - timedelta(seconds=60),
                JOBS.c.finished_at <= generated_at,
            )
        ).scalar_one()
        rollups = connection.execute(
            select(
                func.sum(ROLLUPS.c.cost_usd), func.sum(ROLLUPS.c.cache_hits), func.sum(ROLLUPS.c.jobs)
            ).where(ROLLUPS.c.tenant_id == scene.tenant_id, ROLLUPS.c.hour >= day)
        ).one()
    engine.dispose()
    emu_a = sorted(latency for model, latency in latencies if model == "emu-a")
    return {"calls": len(latencies), "emu_a": emu_a, "ended": ended, "rollups": rollups}


def test_every_panel_shows_the_real_figures_and_the_failed_job_opens(
    stack: Stack, scene: Scene, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(browser, stack.api_url + "/dashboard", scene.key)
    _wait(browser, lambda d: int(d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") or 0) >= 2)
    _freeze(browser)
    page = browser.execute_script(SNAPSHOT, list(PANELS))  # one draw's figures, read at once
    figure = {name: None if value == "" else float(value) for name, value in page["figures"].items()}
    expected = _database_figures(stack, scene, datetime.fromisoformat(page["generatedAt"]))

    assert all(page["panels"][panel] for panel in PANELS), page["panels"]
    assert figure["calls.calls"] == expected["calls"]
    assert figure["latency.emu-a.calls"] == len(expected["emu_a"])
    assert figure["latency.emu-a.p50_ms"] == percentile(expected["emu_a"], 0.5)
    assert figure["latency.emu-a.p99_ms"] == percentile(expected["emu_a"], 0.99)
    assert figure["calls.errors"] == 3  # two 503s and the 400
    assert figure["throughput.ended"] == expected["ended"]
    assert figure["jobs.failed"] == 1 and figure["jobs.by_error_code.provider_bad_request"] == 1
    cost, hits, jobs = expected["rollups"]
    assert figure["spend.today_usd"] == pytest.approx(cost, abs=1e-8)
    assert (figure["cache.hits_today"], figure["cache.jobs_today"]) == (hits, jobs) == (1, 11)
    assert figure["webhooks.dead_letters"] == 1
    assert (page["rows"]["kill-switches"], page["rows"]["budgets"], page["rows"]["failed-jobs"]) == (1, 1, 1)
    assert {"small", "retry", "bad"} <= set(page["tiers"])  # an admin key sees every queue
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(name.startswith(stack.api_url) for name in resources), resources
    _save(browser, "dashboard.png")

    link = browser.find_element(By.CSS_SELECTOR, f'[data-job-link="{scene.failed_id}"]')
    assert link.text == scene.failed_id
    link.click()
    _wait(browser, lambda d: d.current_url.endswith(f"/dashboard/jobs/{scene.failed_id}"))
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))
    assert browser.current_url.endswith(f"/dashboard/jobs/{scene.failed_id}")
    assert (
        browser.find_element(By.CSS_SELECTOR, '[data-figure="job.error_code"]').text == "provider_bad_request"
    )
    events = _events(browser)
    assert events[0] == "submitted" and "attempt" in events and events[-1] in ("ended", "webhook"), events
    assert "messages" in browser.find_element(By.CSS_SELECTOR, '[data-content="request"]').text
    _open_job(browser, stack, scene.job_ids[-1])  # two 503s, an answer, a webhook that gave up
    assert len(browser.find_elements(By.CSS_SELECTOR, '[data-row="deliveries"]')) >= 1
    assert len([event for event in _events(browser) if event == "attempt"]) == 3
    _save(browser, "dashboard-job.png")

    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


def test_a_refused_key_asks_again(stack: Stack, scene: Scene, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(stack.api_url + "/dashboard")
    browser.execute_script("sessionStorage.setItem('switchyard.apiKey', 'sy_not_a_key'); location.reload();")
    message = _wait(browser, lambda d: d.find_element(By.ID, "login-message").text)
    assert "invalid_api_key" in message
    browser.get_log("browser")  # the refused request's 401 is expected here


def _freeze(driver: Any) -> None:
    """Stop the page's polling and let a refresh in flight land, so every figure read is of one answer."""
    from selenium.webdriver.common.by import By

    # No next refresh, and none started by a visibility change (a resize for the screenshot).
    driver.execute_script("window.setTimeout = () => 0; SY.getJson = () => new Promise(() => {});")
    seen, steady_since = None, time.monotonic()
    while time.monotonic() - steady_since < 1.5:
        loaded = driver.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")
        if loaded != seen:
            seen, steady_since = loaded, time.monotonic()
        time.sleep(0.1)


def _open_job(browser: Any, stack: Stack, job_id: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{stack.api_url}/dashboard/jobs/{job_id}")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))


def _events(browser: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.get_attribute("data-event") for e in browser.find_elements(By.CSS_SELECTOR, "[data-event]")]


def _save(browser: Any, name: str) -> None:
    """The whole page as a PNG in $SWITCHYARD_DASHBOARD_SCREENSHOTS, if set."""
    folder = os.environ.get("SWITCHYARD_DASHBOARD_SCREENSHOTS")
    if not folder:
        return
    bottom = "return Math.ceil(document.querySelector('main').getBoundingClientRect().bottom)"
    height = browser.execute_script(bottom)
    metrics = {"width": 1440, "height": int(height), "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    browser.save_screenshot(str(Path(folder) / name))
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_top_once_prints_the_same_figures(stack: Stack, scene: Scene) -> None:
    env = {
        **os.environ,
        "SWITCHYARD_API_URL": stack.api_url,
        "SWITCHYARD_API_KEY": scene.key,
        "COLUMNS": "200",
    }
    argv = [sys.executable, "-m", "cli.main", "top", "--once"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    for expected in (scene.failed_id, "provider_bad_request", "emu-a", "dead letters", "provider incident"):
        assert expected in done.stdout, done.stdout
    refused = subprocess.run(
        [*argv, "--api-key", "sy_not_a_key"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert refused.returncode == 1 and "invalid_api_key" in refused.stderr
