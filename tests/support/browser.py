"""Real Chromium (the Debian package) driven by Playwright, for the embedded screens.

The sample parent page runs on http://127.0.0.1:<port> and frames the screens from
http://localhost:<port>: two host names, so the browser treats the embed as cross-site, as in
production (third-party cookies dropped). Screenshots go to FEEDGATE_ARTIFACTS_DIR (default
`.artifacts/screens`), kept by CI as test artifacts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("FEEDGATE_ARTIFACTS_DIR", ".artifacts")) / "screens"


@contextmanager
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run .ci/setup (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_path(name: str) -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return str(ARTIFACTS / f"{name}.png")
