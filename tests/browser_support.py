"""Shared set-up for Playwright browser tests on Debian's chromium (Playwright cannot download a browser
here). The launch-args fixture itself lives in tests/conftest.py so every browser test uses it."""
import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium floods the closed network with refused connections.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def require_chromium():
    """Skip locally without chromium; in CI (CI=true) a missing browser is a failure, not a skip."""
    if shutil.which(CHROMIUM) or os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (scripts/ensure-chromium.sh)")
    pytest.skip(f"{CHROMIUM} is not installed")


def login(page, live_server, username, password="test-pass-123"):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
