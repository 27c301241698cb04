"""Browser tests: a headless Debian chromium driven by Selenium, whose screenshots go under
the test's tmp_path and are listed in the report of a failed test."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = "chromium", "chromedriver"


class Browser:
    """A headless chromium that saves numbered screenshots under `folder`."""

    def __init__(self, folder: Path):
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        options = Options()
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1600,1200"):  # fmt: skip
            options.add_argument(argument)
        options.binary_location = shutil.which(CHROMIUM)
        self.driver = webdriver.Chrome(service=Service(shutil.which(CHROMEDRIVER)), options=options)
        self.folder = folder
        self.screenshots: list[Path] = []

    def shot(self, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{len(self.screenshots) + 1:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        self.screenshots.append(path)
        return path

    def wait_for(self, condition: Callable[[], object], what: str, timeout: float = 60):
        """Poll `condition` until it returns something true; on timeout fail with a
        screenshot of the page, its path in the message."""
        deadline, last_error = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            try:
                found = condition()
                if found:
                    return found
            except Exception as error:  # the page is still rendering; keep polling
                last_error = error
            time.sleep(0.5)
        path = self.shot("timeout")
        raise AssertionError(
            f"{what}: not seen within {timeout:.0f}s on {self.driver.current_url} "
            f"(last error: {last_error!r}); screenshot: {path}"
        )

    def body_text(self) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text


@pytest.fixture
def browser(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Browser]:
    """Headless chromium; skipped with the reason when chromium, its driver or Selenium
    is missing (CI installs them: .ci/run)."""
    missing = [name for name in (CHROMIUM, CHROMEDRIVER) if shutil.which(name) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (apt-get install chromium "
                    "chromium-driver)")  # fmt: skip
    pytest.importorskip("selenium", reason="selenium not installed (uv sync --group dev)")
    browser = Browser(tmp_path / "screenshots")
    request.node.browser = browser
    try:
        yield browser
    finally:
        browser.driver.quit()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed browser test gets a last screenshot, and the paths of all of them in its
    report."""
    report = yield
    browser = getattr(item, "browser", None)
    if browser is not None and report.failed and call.when == "call":
        try:
            browser.shot("failure")
        except Exception as error:  # the browser itself may be what failed
            report.sections.append(("screenshots", f"no final screenshot: {error!r}"))
        paths = "\n".join(str(path) for path in browser.screenshots)
        report.sections.append(("screenshots", paths or "none taken"))
    return report
