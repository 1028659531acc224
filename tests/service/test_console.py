"""The console in real headless Chromium (Debian's chromium and chromium-driver, through Selenium;
nothing is downloaded): log in with a token, start the example workflow on the simulator, watch the
host grid change live, approve the gate from the page as an approver, see the run complete.
Screenshots go to the test's directory (``console-*.png``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from tests.service.conftest import SUNDAY, Service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "apt-get install chromium chromium-driver (.ci/run installs them)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    chrome = webdriver.Chrome(options=options, service=DriverService(executable_path=driver))
    yield chrome
    chrome.quit()


def _login(chrome: webdriver.Chrome, service: Service, who: str) -> None:
    chrome.get(service.url + "/console/login")
    chrome.find_element(By.ID, "token").send_keys(service.tokens[who])
    chrome.find_element(By.ID, "login").click()
    WebDriverWait(chrome, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, "nav[aria-label=Main]")))


def _approve(chrome: webdriver.Chrome) -> bool:
    """Comment and approve (again from the top when the live panel was redrawn meanwhile)."""
    chrome.find_element(By.ID, "comment").send_keys("canary looks fine")
    chrome.find_element(By.ID, "approve").click()
    return True


def _live_change(chrome: webdriver.Chrome) -> bool:
    """A host cell shows work under way while the page was not reloaded (its marker is still set)."""
    busy = chrome.find_elements(By.CSS_SELECTOR, "#grid .s-running, #grid .s-in_progress")
    return bool(busy) and bool(chrome.execute_script("return window.sysflowMarker === 1"))


def _all_done(chrome: webdriver.Chrome) -> bool:
    cells = chrome.find_elements(By.CSS_SELECTOR, "#grid .host")  # read again if the panel was redrawn
    return len(cells) == 14 and all("succeeded" in c.text or "skipped" in c.text for c in cells)


def _gantt_drawn(d: webdriver.Chrome) -> bool:
    gantt = d.find_element(By.ID, "gantt")
    return gantt.tag_name == "svg" and bool(gantt.find_elements(By.CSS_SELECTOR, "rect.actual"))


def test_start_watch_approve_and_complete_a_run_in_the_browser(
    service: Service, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    wait = WebDriverWait(browser, 90, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException])
    _login(browser, service, "olga")
    Select(browser.find_element(By.ID, "workflow")).select_by_value("patching")
    Select(browser.find_element(By.ID, "inventory")).select_by_value("example")
    browser.find_element(By.ID, "pace").clear()
    browser.find_element(By.ID, "pace").send_keys("0.005")
    browser.find_element(By.ID, "vstart").send_keys(SUNDAY)
    browser.save_screenshot(str(tmp_path / "console-1-start.png"))
    browser.find_element(By.ID, "start").click()
    WebDriverWait(browser, 60).until(
        lambda d: "/console/runs/" in d.current_url or d.find_elements(By.ID, "error")
    )
    assert "/console/runs/" in browser.current_url, browser.find_element(By.TAG_NAME, "main").text
    run_url = browser.current_url
    wait.until(lambda d: "waits for an approver" in d.find_element(By.ID, "panel").text)
    assert not browser.find_elements(By.ID, "approve")  # an operator has no approve button
    browser.find_element(By.CSS_SELECTOR, ".who button").click()
    _login(browser, service, "bob")
    browser.get(run_url)
    wait.until(ec.element_to_be_clickable((By.ID, "approve")))
    browser.save_screenshot(str(tmp_path / "console-2-approve.png"))
    page = browser.find_element(By.TAG_NAME, "html")
    wait.until(_approve)
    # the approval's form post loads the page once; from then on the hosts change state live,
    # without a reload (the marker set on this page survives)
    wait.until(ec.staleness_of(page))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    browser.execute_script("window.sysflowMarker = 1")
    wait.until(_live_change)
    browser.save_screenshot(str(tmp_path / "console-3-live.png"))
    wait.until(lambda d: d.find_element(By.ID, "status").text in ("completed", "completed_with_failures"))
    wait.until(_all_done)
    assert browser.execute_script("return window.sysflowMarker === 1")  # all of it live, no reload
    browser.save_screenshot(str(tmp_path / "console-4-done.png"))
    # the plan against actual, drawn by the server; the panel is redrawn as the last events come
    # (the worker's exit), so the element is asked for again until it stands
    wait.until(_gantt_drawn)
    browser.execute_script("document.getElementById('gantt').scrollIntoView()")
    browser.save_screenshot(str(tmp_path / "console-5-gantt.png"))
    browser.get(service.url + "/console/audit?action=service.approve")
    assert "bob (token" in browser.find_element(By.TAG_NAME, "table").text
    shutil.copytree(tmp_path, service.root / "screenshots", dirs_exist_ok=True)
    print("screenshots:", tmp_path)
