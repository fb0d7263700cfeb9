"""Measurements in the viewer, saved as DICOM SR through the real STOW-RS and restored.

A length drawn with the mouse on the demo CT is listed in mm, saved by the radiologist (an
SR instance appears in the study, seen through QIDO-RS with the test client's token) and
listed again after a reload (restored from that SR). A user who may view the images but not
upload is refused (403) and nothing is stored: the demo ``patient`` account (its own images,
view and download only). The demo nurse would be the natural choice but sees no demo patient
(no care relationship: "Study not found (or not yours to see)"). The SRs are counted before
and after, so the tests pass in any order on the session's server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from e2e.harness import DemoServer, signed_in_page, wait_rendered
from vesalius.demo.ct import CT_FIELD_OF_VIEW_MM

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

LENGTH = re.compile(r"Length (\d+(?:\.\d+)?) mm")
#: Canvas pixels the drag covers.
DRAG_PX = 120


def sr_instances(server: DemoServer, study: str) -> list[str]:
    """SOP Instance UIDs of the study's SR instances (QIDO-RS, as the test client)."""
    response = server.get(f"/dicom-web/studies/{study}/instances", Modality="SR")
    if response.status_code == 204:
        return []
    response.raise_for_status()
    return [item["00080018"]["Value"][0] for item in response.json()]


def open_viewer(context: BrowserContext, server: DemoServer, username: str) -> Page:
    """The demo CT's stack, rendered, with the study's saved measurements restored."""
    page = signed_in_page(context, server, f"/viewer?study={server.ct_study_uid}", username)
    wait_rendered(page, "stack")
    # "Loading study…" is shown until the saved measurements are restored (or found absent).
    page.wait_for_function("""() => {
      const status = document.querySelector('[data-testid=viewer-status]');
      return !status || !status.textContent.startsWith('Loading');
    }""")
    return page


def measurements(page: Page) -> list[str]:
    return page.locator("[data-testid=measurement]").all_inner_texts()


def draw_length(page: Page, dy: float) -> float:
    """Select the length tool and drag across the stack viewport; the expected length in mm
    (the 512x512 image of CT_FIELD_OF_VIEW_MM is fitted to the viewport's smaller side).
    The pointer rests at the end before the button is released, as a hand does: the list
    reads the statistics of the last render, which lag the last mouse move until then.
    ``dy``: pixels below the centre, so that the drag starts on no handle of a measurement
    restored from another test's save (it would move that one instead)."""
    page.get_by_test_id("tool-Length").click()
    box = page.get_by_test_id("viewport-stack").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 + dy
    page.mouse.move(x - DRAG_PX / 2, y)
    page.mouse.down()
    page.mouse.move(x, y + 1, steps=5)
    page.mouse.move(x + DRAG_PX / 2, y, steps=5)
    page.wait_for_timeout(300)
    page.mouse.up()
    return DRAG_PX * CT_FIELD_OF_VIEW_MM / min(box["width"], box["height"])


def wait_count(page: Page, count: int) -> None:
    page.locator(f"[data-testid=measurement-list][data-count='{count}']").wait_for()


def status(page: Page, pattern: str) -> str:
    """Wait for the viewer's status line to match ``pattern`` (a JavaScript regex)."""
    page.wait_for_function(
        """(pattern) => new RegExp(pattern).test(
             document.querySelector('[data-testid=viewer-status]')?.textContent ?? '')""",
        arg=pattern)
    return page.get_by_test_id("viewer-status").inner_text()


def test_length_is_saved_as_sr_and_restored(
        demo_server: DemoServer, new_context: Callable[..., BrowserContext]) -> None:
    study = demo_server.ct_study_uid
    stored_before = sr_instances(demo_server, study)
    page = open_viewer(new_context(viewport={"width": 1280, "height": 900}), demo_server,
                       "radiologist")
    listed_before = len(measurements(page))

    expected_mm = draw_length(page, -60)
    wait_count(page, listed_before + 1)
    drawn = LENGTH.search(measurements(page)[-1])
    assert drawn, measurements(page)
    length_mm = float(drawn.group(1))
    assert abs(length_mm - expected_mm) < 0.15 * expected_mm, (length_mm, expected_mm)

    page.get_by_test_id("save-measurements").click()
    saved = status(page, r"^Saved \d+ measurements? as DICOM SR|^Save failed")
    assert saved.startswith("Saved"), saved
    stored_after = sr_instances(demo_server, study)
    assert len(stored_after) == len(stored_before) + 1, (stored_before, stored_after)
    assert set(stored_before) < set(stored_after)

    # A new document: nothing survives but what the server stored.
    page.reload()
    wait_rendered(page, "stack")
    restored = status(page, r"saved measurements? restored")
    assert restored.startswith(f"{listed_before + 1} "), restored
    wait_count(page, listed_before + 1)
    lengths = [float(m.group(1)) for text in measurements(page)
               if (m := LENGTH.search(text))]
    assert any(abs(value - length_mm) <= 0.15 for value in lengths), (length_mm, lengths)


def test_viewer_without_upload_right_may_not_save(
        demo_server: DemoServer, new_context: Callable[..., BrowserContext]) -> None:
    study = demo_server.ct_study_uid
    stored_before = sr_instances(demo_server, study)
    page = open_viewer(new_context(viewport={"width": 1280, "height": 900}), demo_server,
                       "patient")
    listed_before = len(measurements(page))
    draw_length(page, 60)
    wait_count(page, listed_before + 1)

    page.get_by_test_id("save-measurements").click()
    refused = status(page, r"^Saved \d+ measurements? as DICOM SR|^Save failed")
    assert refused.startswith("Save failed: STOW-RS answered 403"), refused
    assert sr_instances(demo_server, study) == stored_before
