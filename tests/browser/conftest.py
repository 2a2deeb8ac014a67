"""Fixtures for the browser tests: a built app, Debian's Chromium driven by Playwright, pages.

Playwright's own browser download cannot run here, so the tests launch `/usr/bin/chromium`
(`apt-get install chromium`). Screenshots of the main states go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

playwright_sync = pytest.importorskip("playwright.sync_api")

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "frontend"
DIST = FRONTEND / "dist"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple 42"


def build_frontend() -> Path:
    """Build the app once if no build is there (the setup normally did it already)."""
    if (DIST / "index.html").exists():
        return DIST
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed and frontend/dist is missing")
    if not (FRONTEND / "node_modules").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=FRONTEND, check=True
        )
    subprocess.run([npm, "run", "build"], cwd=FRONTEND, check=True)
    return DIST


@pytest.fixture(scope="session")
def frontend_dist() -> Path:
    return build_frontend()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def app_url(frontend_dist: Path, live_stack: Any) -> str:
    """The real stack's URL, after checking that it serves this build's assets."""
    asset = next((frontend_dist / "assets").glob("*.js")).name
    url = f"{live_stack.base_url}/static/assets/{asset}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
    except Exception as error:
        pytest.fail(
            f"The stack does not serve the built app ({url}: {error}). Build the frontend "
            "(cd frontend && npm ci && npm run build) before the stack starts."
        )
    return str(live_stack.base_url)


def new_page(browser: Any, **context_options: Any) -> Any:
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 820}, **context_options})
    context.set_default_timeout(30_000)
    return context.new_page()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = new_page(browser)
    yield page
    page.context.close()


@pytest.fixture
def phone_page(browser: Any) -> Iterator[Any]:
    page = new_page(
        browser,
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    yield page
    page.context.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
