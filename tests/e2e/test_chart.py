"""The clinician's web app in a real browser: sign-in, patient search, the chart, permissions.

Issue 6, "How we'll know": sign in, find the demo patient, open the chart, open the CT. The
data is the demo's, served by ``vesalius serve --demo``; nothing here is mocked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from e2e.harness import (
    DemoServer,
    sign_in,
    signed_in_page,
    viewport_pixels,
    wait_rendered,
)

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

PENICILLIN = re.compile("penicillin", re.IGNORECASE)
CHART_READY = "[data-testid=chart][data-ready=true]"
GENERIC_ERROR = "Wrong username or password."

#: Every study card of the imaging timeline shows a thumbnail that loaded (decoded, not
#: broken), and so does every other image in the timeline.
_THUMBNAILS_LOADED = """
(studies) => {
  const timeline = document.querySelector('[data-testid=imaging-timeline]');
  if (!timeline) return false;
  const cards = [...timeline.querySelectorAll('[data-testid=timeline-study]')];
  const loaded = (i) => i.complete && i.naturalWidth > 0;
  return cards.length === studies && cards.every(c => [...c.querySelectorAll('img')].some(loaded))
    && [...timeline.querySelectorAll('img')].every(loaded);
}
"""


def _timeline_studies(server: DemoServer) -> int:
    """How many studies the chart API puts in the demo patient's imaging timeline."""
    chart = server.get(f"/api/patients/{server.patient_id}/chart")
    chart.raise_for_status()
    return sum(entry["kind"] == "imaging-study" for entry in chart.json()["timeline"])


def _open_chart_from_search(page: Page, server: DemoServer) -> None:
    search = page.locator("[data-testid=patient-search] input[name=name]")
    search.fill("Alice")
    search.press("Enter")
    page.locator(f'a[href="/patients/{server.patient_id}"]').first.click()
    page.wait_for_url(f"**/patients/{server.patient_id}")
    page.locator(CHART_READY).wait_for()


def test_clinician_finds_the_patient_reads_the_chart_and_opens_the_ct(
        demo_server: DemoServer, new_context: Callable[..., BrowserContext],
        artifacts: Path) -> None:
    page = signed_in_page(new_context(), demo_server, "/", "clinician")
    page.screenshot(path=str(artifacts / "01-home.png"), full_page=True)

    _open_chart_from_search(page, demo_server)
    chart = page.locator("[data-testid=chart]")
    # The allergy alert in the banner, the labs as a table, the imaging timeline's thumbnails.
    alert = chart.locator("[data-testid=allergy-alert][role=alert]")
    assert PENICILLIN.search(alert.inner_text()), "no allergy alert naming penicillin"
    labs = chart.locator("table").filter(has_text=re.compile("hemoglobin|creatinine", re.I))
    assert labs.count() >= 1, "no table of laboratory results"
    assert labs.first.locator("tbody tr").count() >= 2
    studies = _timeline_studies(demo_server)
    assert studies == 4  # current CT, prior CT, chest X-ray, ultrasound cine
    chart.locator("[data-testid=imaging-timeline]").scroll_into_view_if_needed()
    page.wait_for_function(_THUMBNAILS_LOADED, arg=studies)
    page.screenshot(path=str(artifacts / "02-chart.png"), full_page=True)

    chart.locator(f'[data-testid=timeline-study][data-study-uid="{demo_server.ct_study_uid}"]'
                  ).click()
    page.wait_for_url(re.compile(r"/viewer\?"))
    wait_rendered(page, "stack")
    pixels = viewport_pixels(page, "stack", artifacts, "03-viewer")
    assert pixels.screenshot_variance > 0
    assert pixels.canvas is not None and pixels.canvas["variance"] > 0, pixels


def test_patient_sees_their_own_chart_and_no_other(
        demo_server: DemoServer, new_context: Callable[..., BrowserContext],
        artifacts: Path) -> None:
    page = signed_in_page(new_context(), demo_server, f"/patients/{demo_server.patient_id}",
                          "patient")
    page.locator(CHART_READY).wait_for()
    assert page.locator("[data-testid=chart]").get_by_text(PENICILLIN).count() >= 1
    page.screenshot(path=str(artifacts / "04-patient-own-chart.png"), full_page=True)

    other = demo_server.other_patient_id
    with page.expect_response(lambda r: other in r.url and ("/api/" in r.url
                                                            or "/fhir/" in r.url)) as answer:
        page.goto(f"/patients/{other}")
    assert answer.value.status == 404
    refused = page.locator("[data-testid=chart][data-error=true] [role=alert]")
    assert "not found" in refused.inner_text().lower()
    assert page.locator(CHART_READY).count() == 0
    page.screenshot(path=str(artifacts / "05-patient-other-chart.png"), full_page=True)


def test_unauthenticated_visit_goes_to_sign_in(
        demo_server: DemoServer, new_context: Callable[..., BrowserContext]) -> None:
    page = new_context().new_page()
    page.goto("/patients/x")
    page.wait_for_url("**/auth/**")
    assert "client_id=vesalius-web" in page.url
    page.locator("#username").wait_for()
    assert page.locator("[data-testid=chart]").count() == 0


def test_wrong_password_shows_the_generic_error(
        demo_server: DemoServer, new_context: Callable[..., BrowserContext],
        artifacts: Path) -> None:
    page = new_context().new_page()
    page.goto("/")
    sign_in(page, "nurse", "not-the-password-1")
    wrong_password = page.get_by_role("alert").inner_text()
    page.screenshot(path=str(artifacts / "06-wrong-password.png"))
    sign_in(page, "nobody-of-that-name", "not-the-password-1")
    no_such_user = page.get_by_role("alert").inner_text()
    assert wrong_password == no_such_user == GENERIC_ERROR
    assert "/auth/" in page.url


def test_chart_fits_a_phone(demo_server: DemoServer, new_context: Callable[..., BrowserContext],
                            artifacts: Path) -> None:
    context = new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                          has_touch=True)
    page = signed_in_page(context, demo_server, f"/patients/{demo_server.patient_id}",
                          "clinician")
    page.locator(CHART_READY).wait_for()
    page.screenshot(path=str(artifacts / "07-phone-chart.png"), full_page=True)
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"horizontal scroll on a phone: {widths}"
