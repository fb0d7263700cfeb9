"""Fixtures of the end-to-end tests; the machinery is in ``harness``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conftest import cli_token, free_port, require
from e2e.harness import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    DEMO_CT_SLICES,
    DemoServer,
    build_ui,
    look_up_demo,
    stop,
    wait_healthy,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """The built web app and the demo data behind a real ``vesalius serve`` on loopback."""
    build_ui()
    root = tmp_path_factory.mktemp("e2e-server")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("VESALIUS_")}
    # The tokens' issuer and the app's redirect URIs are built from this address.
    env.update(VESALIUS_DEMO_CT_SLICES=str(DEMO_CT_SLICES), VESALIUS_LOG_LEVEL="warning",
               VESALIUS_HOST="127.0.0.1", VESALIUS_HTTP_PORT=str(port))
    log = root / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "vesalius.cli.main", "serve", "--demo",
             "--data-dir", str(root / "data"), "--host", "127.0.0.1",
             "--http-port", str(port), "--http-workers", "1", "--dicom-port", "0"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_healthy(process, base, log)
        server = DemoServer(base, root / "data", log, cli_token(root / "data", env))
        look_up_demo(server)
        yield server
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser per test module: playwright's sync API runs an asyncio loop on this thread
    while it is open, so it must be closed before the rest of the suite (which uses
    ``asyncio.run``) runs."""
    require(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (Debian package chromium; "
                                     "scripts/system-deps.sh installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "Python playwright is not installed (pip install -e '.[test]')")
        raise
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots are kept."""
    where = os.environ.get("VESALIUS_TEST_ARTIFACTS")
    if where:
        path = Path(where) / "e2e"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("e2e-screenshots")


@pytest.fixture
def new_context(browser: Browser, demo_server: DemoServer
                ) -> Iterator[Callable[..., BrowserContext]]:
    """Opens isolated browser contexts (no cookies, no storage) and closes them after the
    test; console errors of the page are printed, so a failing test shows them."""
    opened: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(base_url=demo_server.base, **options)
        context.set_default_timeout(60_000)
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()
