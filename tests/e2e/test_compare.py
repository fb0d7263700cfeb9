"""Prior comparison: the demo CT beside the same patient's prior CT, scrolled together.

The viewer finds the prior itself (same patient, same modality, earlier date). Both demo CTs
have the same slice positions (``vesalius.demo.ct.ct_head_series``: the prior differs in its
anatomy, not its geometry), so synchronised scrolling by position keeps the two stacks at the
same slice number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from e2e.harness import DemoServer, signed_in_page, wait_rendered

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

STEPS = 5


def slice_of(page: Page, name: str) -> tuple[int, int]:
    """The viewport's ``data-slice="i/N"``."""
    value = page.get_by_test_id(f"viewport-{name}").get_attribute("data-slice")
    assert value, f"viewport-{name} has no data-slice"
    index, total = value.split("/")
    return int(index), int(total)


def wait_slice(page: Page, name: str, index: int) -> None:
    page.locator(f"[data-testid=viewport-{name}][data-slice^='{index}/']").wait_for(
        timeout=30_000)


def test_prior_follows_the_current_study(
        demo_server: DemoServer, new_context: Callable[..., BrowserContext]) -> None:
    page = signed_in_page(new_context(viewport={"width": 1280, "height": 900}), demo_server,
                          f"/viewer?study={demo_server.ct_study_uid}&layout=compare",
                          "clinician")
    for name in ("stack", "prior"):
        wait_rendered(page, name)
    assert page.get_by_test_id("viewer").get_attribute("data-layout") == "compare"
    start, total = slice_of(page, "stack")
    wait_slice(page, "prior", start)
    assert slice_of(page, "prior") == (start, total)

    # Wheel over the current study (it opens at its middle slice: room either way).
    box = page.get_by_test_id("viewport-stack").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert STEPS < start <= total - STEPS, (start, total)
    for _ in range(STEPS):
        page.mouse.wheel(0, 100)
        page.wait_for_timeout(100)
    # One slice per wheel event; which way is the tool's choice.
    page.wait_for_function(
        """([start, steps]) => {
          const value = document.querySelector('[data-testid=viewport-stack]').dataset.slice;
          return Math.abs(parseInt(value) - start) === steps;
        }""", arg=[start, STEPS], timeout=30_000)
    target, _ = slice_of(page, "stack")
    wait_slice(page, "prior", target)
    assert slice_of(page, "prior") == (target, total)
