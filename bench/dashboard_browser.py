"""The dashboard loaded by a real browser: headless Chromium through Selenium, a second figure
beside ``bench/dashboard_load.py``'s HTTP loads.

It signs in once (the key stays in the tab's session storage, as the page keeps it), then times
``--dashboard-runs`` navigations to ``/dashboard``, each from the request until the page has
drawn its panels from ``GET /v1/dashboard`` (``<body data-loaded>``, set by the page's script).
Debian's ``chromium`` and ``chromium-driver`` are used when installed (``.ci/run`` installs
them); without them the figure is left out. Selenium Manager never downloads anything.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


def available() -> bool:
    """Whether Chromium, its driver and Selenium are all here."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


def time_loads(api_url: str, key: str, runs: int) -> list[float]:
    """Milliseconds of each of ``runs`` warm loads (after two untimed ones)."""
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="switchyard-bench-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            driver.set_page_load_timeout(60)
            sign_in(driver, f"{api_url}/dashboard", key)
            times = [load_once(driver, f"{api_url}/dashboard") for _ in range(runs + 2)]
        finally:
            driver.quit()
    return times[2:]


def sign_in(driver: Any, url: str, key: str) -> None:
    """Open the page and give it the key the way a person does: the sign-in form."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    field = wait(
        driver,
        lambda d: d.find_element(By.ID, "login-key").is_displayed() and d.find_element(By.ID, "login-key"),
    )
    field.send_keys(key)
    driver.find_element(By.ID, "login-submit").click()
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))


def load_once(driver: Any, url: str) -> float:
    """One navigation, timed until the page has drawn its first answer."""
    from selenium.webdriver.common.by import By

    started = time.perf_counter()
    driver.get(url)
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))
    return (time.perf_counter() - started) * 1000


def wait(driver: Any, condition: Any, timeout: float = 30.0) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, 0.005, ignored_exceptions=[StaleElementReferenceException]).until(
        condition
    )


def median_ms(api_url: str, key: str, runs: int) -> float | None:
    """The median browser load, or None when no browser is installed."""
    return statistics.median(time_loads(api_url, key, runs)) if available() else None
