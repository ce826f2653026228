"""Headless Chromium (Debian's chromium and chromium-driver) driven by selenium, against
the app served from a thread, for the console's browser tests and its screenshots."""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SCREENS = ROOT / "var" / "screens"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--window-size=1366,900",
                  "--disable-dev-shm-usage")


def browser_binaries() -> tuple[str, str]:
    """(chromium, chromedriver); skipped when absent, failed with REQUIRE_SERVICES=1
    (`make browsers` or .ci/run installs them)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = "chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message + " but REQUIRE_SERVICES=1")
    pytest.skip(message)


def start_chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    chromium, driver = browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    # The driver is given: selenium must not look for (or download) one.
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


class ServedApp:
    """The Flask app on 127.0.0.1 (a free port), served by werkzeug from a thread."""

    def __init__(self, app):
        from werkzeug.serving import make_server
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="console-under-test")
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class Pages:
    """The pages a test visited, to photograph when it fails."""

    def __init__(self, driver, base_url: str):
        self.driver, self.base_url, self.visited = driver, base_url, []

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)
        self.seen()

    def seen(self) -> None:
        url = self.driver.current_url
        if url not in self.visited:
            self.visited.append(url)

    def photograph(self, folder: Path, prefix: str) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        shots = []
        for n, url in enumerate(self.visited):
            self.driver.get(url)
            path = folder / f"{prefix}-{n:02d}.png"
            self.driver.save_screenshot(str(path))
            shots.append(path)
        return shots
