"""End-to-end harness: the built web app served by a real ``vesalius serve --demo`` process,
driven by the Debian ``chromium`` through playwright.

One server per session (the demo load is the slow part); a fresh browser context per test, so
no test passes on another's sign-in. Screenshots go to ``$VESALIUS_TEST_ARTIFACTS/e2e`` when
that is set (CI keeps them), else to pytest's temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from conftest import require
from vesalius.demo.common import DEFAULT_PATIENT
from vesalius.dicom.patient_identity import identifier_system

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

REPO = Path(__file__).resolve().parents[2]
BUILD_UI = REPO / "scripts" / "build-ui.sh"
UI_DIST = REPO / "src" / "vesalius" / "web" / "ui" / "dist"
CHROMIUM = "/usr/bin/chromium"
#: Flags that give headless WebGL2 in software here (FIELD-NOTES: --disable-software-rasterizer
#: would kill WebGL); the rest keep the browser from calling out.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]
#: Slices of each demo CT: enough for MPR and MIP, small enough to load in seconds.
DEMO_CT_SLICES = 64
#: The demo loads before the server listens; on a busy 2-core machine that can take minutes.
START_TIMEOUT = 240.0


@dataclass
class DemoServer:
    """A ``vesalius serve --demo`` process and what the tests need to know about its data,
    looked up through the public APIs as the test client."""

    base: str
    data_dir: Path
    log: Path
    headers: dict[str, str]
    patient_id: str = ""
    ct_study_uid: str = ""
    prior_ct_study_uid: str = ""
    other_patient_id: str = ""

    def get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(self.base + path, params=params, headers=self.headers, timeout=30)

    def password(self, username: str) -> str:
        """A demo account's password, read from the sign-in printout of ``serve --demo``
        (the way a person trying the demo learns it)."""
        printed = re.search(rf"^\s+{re.escape(username)}\s+password (\S+)",
                            self.log.read_text(errors="replace"), re.MULTILINE)
        assert printed, f"serve --demo printed no password for {username}"
        return printed.group(1)


def build_ui() -> None:
    """F1's build script rebuilds the assets when they are missing or stale."""
    require(BUILD_UI.exists(), f"{BUILD_UI} is missing: the web app cannot be built")
    done = subprocess.run(["sh", str(BUILD_UI)], cwd=REPO, capture_output=True, text=True,
                          timeout=900)
    if done.returncode != 0:
        pytest.fail(f"building the web app failed:\n{done.stdout[-2000:]}\n"
                    f"{done.stderr[-3000:]}")
    require((UI_DIST / "index.html").exists(), f"no {UI_DIST}/index.html after building the "
                                               "web app")


def wait_healthy(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"vesalius serve exited ({process.returncode}):\n"
                        f"{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"vesalius serve did not answer /healthz within {START_TIMEOUT:.0f} s:\n"
                f"{log.read_text(errors='replace')[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def look_up_demo(server: DemoServer) -> None:
    """The demo Patient (by its DICOM identity), its current and prior CT (QIDO-RS), and a
    second Patient created here, outside the demo patient's own record."""
    system = identifier_system(DEFAULT_PATIENT.issuer)
    found = server.get("/fhir/Patient",
                       identifier=f"{system}|{DEFAULT_PATIENT.patient_id}").json()
    server.patient_id = found["entry"][0]["resource"]["id"]
    studies = server.get("/dicom-web/studies", PatientID=DEFAULT_PATIENT.patient_id,
                         ModalitiesInStudy="CT").json()
    by_date = sorted(studies, key=lambda s: s["00080020"]["Value"][0], reverse=True)
    server.ct_study_uid = by_date[0]["0020000D"]["Value"][0]
    server.prior_ct_study_uid = by_date[1]["0020000D"]["Value"][0]
    other = httpx.post(server.base + "/fhir/Patient", headers={
        **server.headers, "Content-Type": "application/fhir+json"}, timeout=30, json={
        "resourceType": "Patient", "name": [{"family": "Other", "given": ["Bob"]}],
        "birthDate": "1980-02-02", "gender": "male"})
    other.raise_for_status()
    server.other_patient_id = other.json()["id"]


def sign_in(page: Page, username: str, password: str) -> None:
    """Fill the provider's real sign-in form (``/auth/authorize`` → ``/auth/login``)."""
    page.wait_for_url("**/auth/**")
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.locator("button[type=submit]").click()


def signed_in_page(context: BrowserContext, server: DemoServer, path: str,
                   username: str) -> Page:
    """A page of the app at ``path``, reached through the sign-in it redirects to."""
    page = context.new_page()
    _console_to_stdout(page)
    page.goto(path)
    sign_in(page, username, server.password(username))
    page.wait_for_url(lambda url: "/auth/" not in url and "/callback" not in url)
    return page


def _console_to_stdout(page: Page) -> None:
    page.on("console", lambda message: print(f"[browser {message.type}] {message.text}")
            if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: print(f"[browser pageerror] {error}"))


#: Luminance statistics of the largest canvas inside an element, read back through a 2-D
#: canvas (a WebGL canvas is copied with drawImage first). Cornerstone draws each viewport
#: into such a canvas; overlays and annotations are separate DOM/SVG and are not counted.
_CANVAS_STATS = """
(element) => {
  const canvases = [...element.querySelectorAll('canvas')].filter(c => c.width && c.height);
  if (!canvases.length) return null;
  const canvas = canvases.sort((a, b) => b.width * b.height - a.width * a.height)[0];
  const copy = document.createElement('canvas');
  copy.width = canvas.width; copy.height = canvas.height;
  const context = copy.getContext('2d');
  context.drawImage(canvas, 0, 0);
  const data = context.getImageData(0, 0, copy.width, copy.height).data;
  let n = 0, sum = 0, squares = 0, min = 255, max = 0;
  for (let i = 0; i < data.length; i += 4) {
    const v = (data[i] + data[i + 1] + data[i + 2]) / 3;
    n++; sum += v; squares += v * v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / n;
  return {width: copy.width, height: copy.height, mean, variance: squares / n - mean * mean,
          min, max};
}
"""


@dataclass(frozen=True)
class Pixels:
    """What a viewport shows: its canvas read back in the page, and a screenshot of it."""

    canvas: dict[str, float] | None
    screenshot: Path
    screenshot_variance: float


def viewport_pixels(page: Page, name: str, artifacts: Path, step: str) -> Pixels:
    """Screenshot ``viewport-<name>`` into the artifacts and measure its canvas."""
    from PIL import Image, ImageStat

    viewport = page.locator(f"[data-testid=viewport-{name}]")
    path = artifacts / f"{step}-{name}.png"
    viewport.screenshot(path=str(path))
    with Image.open(path) as image:
        variance = float(sum(ImageStat.Stat(image.convert("L")).var))
    return Pixels(viewport.evaluate(_CANVAS_STATS), path, variance)


def wait_rendered(page: Page, name: str, timeout_ms: float = 120_000) -> None:
    """The viewer's readiness contract: ``data-rendered="true"`` after a non-blank render."""
    page.locator(f"[data-testid=viewport-{name}][data-rendered=true]").wait_for(
        timeout=timeout_ms)
