"""Browser tests: Debian's headless Chromium opens the real ComfyUI front end served by a test host.

Skipped (with the reason) when /usr/bin/chromium is missing, except in CI (CI=true), where a missing browser
is an error: CI installs it with scripts/setup_browser.sh.
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1]))  # tests/, for `harness`
sys.path.append(str(Path(__file__).resolve().parent))  # tests/browser/, for `cdp`
import cdp  # noqa: E402
import harness  # noqa: E402


def in_ci():
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def chromium():
    if not os.access(cdp.CHROMIUM, os.X_OK):
        message = f"{cdp.CHROMIUM} not found: install Debian's chromium with scripts/setup_browser.sh"
        if in_ci():
            pytest.fail(message + " (CI=true: the browser test must run)")
        pytest.skip(message)
    return cdp.CHROMIUM


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory, chromium):
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # the browser needs the CPU more than this server does
    try:
        server = harness.ComfyServer(tmp_path_factory.mktemp("ui_server")).start()
    finally:
        if saved is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    yield server
    server.stop()
