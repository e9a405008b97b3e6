"""A real browser for the tests: Debian's headless ``chromium`` driven by Debian's ``chromium-driver``.

Use the session-scoped fixture ``chrome`` in a test module by loading this module as a plugin (one browser
per session, whichever modules use it), and import the helpers inside the browser tests, once pytest has
loaded the plugin (a top-level import would come first and pytest would warn that it cannot rewrite the
module's asserts)::

    pytest_plugins = ["browser"]

    def test_page(chrome: WebDriver, tmp_path: Path) -> None:
        from browser import audio_states, file_url

        chrome.get(file_url(tmp_path / "index.html"))

The driver is passed explicitly (``Service(executable_path=/usr/bin/chromedriver)``) and the browser binary
is named, so selenium-manager never runs and nothing is downloaded. Where chromium or chromedriver is absent
the tests skip with the reason (``make test`` installs both with apt when it runs as root); with
``VC_BROWSER_REQUIRED=1`` (CI) an absent browser fails the test instead of skipping it.

:func:`new_driver` is the same code without pytest (``benchmarks/screenshots.py`` uses it).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "audio_states",
    "browser_missing",
    "chrome",
    "file_url",
    "free_port",
    "new_driver",
    "wait_until",
]

CHROMIUM = os.environ.get("VC_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("VC_CHROMEDRIVER", "/usr/bin/chromedriver")
REQUIRED_ENV = "VC_BROWSER_REQUIRED"
INSTALL_HINT = "install them with `apt-get install -y chromium chromium-driver` (make test does so as root)"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or ``None`` when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the `dev` extra: pip install -e '.[dev]')"
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).is_file() and os.access(p, os.X_OK))]
    if missing:
        return f"{' and '.join(missing)} not found: {INSTALL_HINT}"
    return None


def new_driver(width: int = 1280, height: int = 900) -> WebDriver:
    """A headless Chromium WebDriver (Debian's binaries, no selenium-manager, no network).

    Sandboxing is off because the tests may run as root in a container (Chromium refuses its sandbox there);
    audio may autoplay and is muted, so an ``<audio>`` element loads and plays without a user gesture.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # belt and braces: selenium-manager would never download
    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-sync",
        "--metrics-recording-only",
        "--mute-audio",
        "--autoplay-policy=no-user-gesture-required",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    service = Service(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="session")
def chrome() -> Iterator[WebDriver]:
    """One headless Chromium for the session (per xdist worker); skips, naming the reason, without one."""
    why = browser_missing()
    if why is not None:
        if os.environ.get(REQUIRED_ENV, "") not in ("", "0"):
            pytest.fail(f"{REQUIRED_ENV} is set but the browser tests cannot run: {why}")
        pytest.skip(f"browser test: {why}")
    driver = new_driver()
    try:
        yield driver
    finally:
        with contextlib.suppress(Exception):
            driver.quit()


# ------------------------------------------------------------------------------------------------ helpers
def file_url(path: str | os.PathLike[str]) -> str:
    """The ``file://`` URL of a local file (absolute, percent-escaped)."""
    return Path(path).resolve().as_uri()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll ``condition`` until it returns something truthy (returned); raise ``TimeoutError`` naming
    ``what`` (with the last exception, if any) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as err:  # a page still loading: retry until the deadline
            last = err
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}") from last
        time.sleep(interval)


_AUDIO_STATES_JS = """
return Array.from(document.querySelectorAll('audio')).map(a => ({
  src: a.currentSrc || a.getAttribute('src') || (a.querySelector('source') || {}).src || '',
  readyState: a.readyState,
  duration: Number.isFinite(a.duration) ? a.duration : null,
  error: a.error ? a.error.code : null,
}));
"""


def audio_states(driver: WebDriver, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Every ``<audio>`` element of the page once each has loaded its metadata (``readyState >= 1``) or
    failed: ``{src, readyState, duration (None unless finite), error (MediaError code or None)}``.

    ``preload="none"`` elements are asked to load first, so a lazy page is measured too.
    """
    driver.execute_script(
        "document.querySelectorAll('audio').forEach(a => { a.preload = 'auto'; a.load(); });"
    )

    def settled() -> list[dict[str, Any]] | None:
        states = driver.execute_script(_AUDIO_STATES_JS)
        done = all(s["readyState"] >= 1 or s["error"] is not None for s in states)
        return states if done else None

    try:
        return wait_until(settled, timeout, what="every <audio> element to load its metadata")
    except TimeoutError:
        return driver.execute_script(_AUDIO_STATES_JS)
