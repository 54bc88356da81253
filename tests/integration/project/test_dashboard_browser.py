"""Issue 17: the dashboard in a real browser (Debian's headless chromium, driven by Selenium).

A scratch project of its own (connector, tables, worker, consumer group) and a
``changefeed dashboard`` process for it. The rendered DOM must show the project's connector,
its table and the table's numbers; pausing the connector shows PAUSED within 5 s; with the
worker stopped the table's lag rises, and returns to 0 once a worker runs again. A screenshot
of the page is taken (to the test's tmp dir).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from streams.settings import Settings
from tests.integration.project.scratch_project import CF, REPO, ScratchProject, free_port
from tests.polling import poll

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ROWS = 30


@pytest.fixture
def project(settings: Settings, tmp_path: Path) -> Iterator[ScratchProject]:
    p = ScratchProject(settings, tmp_path, "dash")
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def browser() -> Iterator[object]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("chromium/chromedriver not installed (Debian: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def start_dashboard(p: ScratchProject, port: int) -> subprocess.Popen[bytes]:
    log = (p.folder / "dashboard.log").open("ab")
    proc = subprocess.Popen(
        [CF, "dashboard", "--port", str(port), "--interval", "1",
         "--metrics", f"http://127.0.0.1:{p.metrics_port}/metrics"],
        cwd=REPO, env=p.env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    return proc


def start_worker(p: ScratchProject) -> None:
    log = p.log_path.open("ab")
    p.worker = subprocess.Popen([CF, "worker"], cwd=REPO, env=p.env, stdout=log, stderr=subprocess.STDOUT)
    log.close()


def test_dashboard_in_a_browser(project: ScratchProject, browser: object, tmp_path: Path) -> None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    p, s = project, project.pg_schema
    p.pg_tables({"items": "id bigint PRIMARY KEY, note text NOT NULL"})
    p.tables_file(f'[[tables]]\nsource = "{s}.items"\nsink = "items"\n')
    with p.pg() as pg:
        pg.execute(f"INSERT INTO \"{s}\".items SELECT g, 'first' FROM generate_series(1, {ROWS}) g")
    p.start()
    poll(lambda: len(p.sink_rows("items", "id")) == ROWS, 120, "the snapshot in the sink")
    port = free_port()
    dashboard = start_dashboard(p, port)
    try:
        url = f"http://127.0.0.1:{port}/"
        poll(lambda: _answers(url), 60, "the dashboard to answer")
        browser.get(url)
        table = f"{p.sink_schema}.items"

        def text(css: str) -> str:
            try:
                return str(browser.find_element(By.CSS_SELECTOR, css).text)
            except (NoSuchElementException, StaleElementReferenceException):  # swapped by an update
                return ""

        def cell(field: str) -> str:
            return text(f'tr[data-table="{table}"] td[data-field="{field}"]')

        connector = f'tr[data-connector="{p.pg_connector}"] td[data-field="state"]'
        poll(lambda: text("#feed") == "live", 30, "the live feed to connect")
        poll(lambda: text(connector) == "RUNNING", 30, "the connector RUNNING on the page")
        # each number of the table is rendered: a rate, latencies, lag, counts, the position
        poll(lambda: re.fullmatch(r"\d+\.\d", cell("events_per_s")), 30, "the table's events/s")
        assert cell("lag_events") == "0"
        assert re.fullmatch(r"\d+\.\d s", cell("lag_seconds"))
        assert cell("conflicts") == "0"
        assert cell("dead_letters") == "0"
        assert cell("position").startswith("postgres:")
        with p.pg() as pg:  # live changes, so the workers' histogram has this table's latency
            for i in range(ROWS):
                pg.execute(f"UPDATE \"{s}\".items SET note = 'again' WHERE id = %s", [i + 1])
        poll(lambda: re.fullmatch(r"\d+ ms", cell("latency_p99")), 60, "the table's latency p99")
        assert re.fullmatch(r"\d+ ms", cell("latency_p50"))
        poll(lambda: text('tr[data-worker] td[data-field="partitions"]').endswith(".items[0]"),
             30, "the worker and its partition")  # fmt: skip
        assert text(f'[data-subject="{p.pg_prefix}.{s}.items-value"] td[data-field="version"]') == "1"
        assert browser.find_elements(By.CSS_SELECTOR, 'section[data-section="chart"] polyline.rate')
        assert browser.find_elements(By.CSS_SELECTOR, 'section[data-section="sources"] tr[data-source]')

        paused = p.run("connectors", "pause", p.pg_connector)
        assert paused.returncode == 0, paused.stdout + paused.stderr
        started = time.monotonic()
        poll(lambda: text(connector) == "PAUSED", 5, "PAUSED on the page", interval_s=0.1)
        paused_after = time.monotonic() - started
        health = p.run("health", "--max-lag", "600")
        assert health.returncode == 1
        assert f"connector {p.pg_connector}: PAUSED (0=PAUSED), nothing is captured" in health.stderr, (
            health.stderr
        )
        assert p.run("connectors", "resume", p.pg_connector).returncode == 0
        poll(lambda: text(connector) == "RUNNING", 30, "RUNNING again after resume")

        assert p.worker is not None
        p.worker.terminate()
        p.worker.wait(30)
        with p.pg() as pg:
            pg.execute(
                f"INSERT INTO \"{s}\".items SELECT g, 'while stopped' FROM generate_series(1001, 1050) g"
            )
        poll(lambda: cell("lag_events") == "50", 60, "lag 50 on the page while the worker is stopped")
        poll(
            lambda: "no worker in the group" in text('section[data-section="workers"]'), 60, "the group empty"
        )
        health = p.run("health", "--max-lag", "600")
        assert health.returncode == 1
        assert f"workers: 0 in group {p.env['CHANGEFEED_WORKER__APP_ID']} (need 1)" in health.stderr, (
            health.stderr
        )
        browser.save_screenshot(str(tmp_path / "dashboard.png"))
        start_worker(p)
        poll(lambda: cell("lag_events") == "0", 120, "lag back to 0 after the worker restarted")
        poll(lambda: text('tr[data-worker] td[data-field="partitions"]').endswith(".items[0]"),
             60, "the worker back in the group")  # fmt: skip
        health = p.run("health", "--max-lag", "600")
        # Only what is ours is judged here: the shared stack may have problems of its own.
        assert "workers:" not in health.stderr, health.stderr
        assert p.pg_connector not in health.stderr, health.stderr
        assert f"lag {table}" not in health.stderr, health.stderr
        assert (tmp_path / "dashboard.png").stat().st_size > 10_000
        print(f"PAUSED shown {paused_after:.2f} s after the pause")
    finally:
        dashboard.terminate()
        dashboard.wait(30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
