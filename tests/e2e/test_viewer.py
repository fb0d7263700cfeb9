"""The diagnostic viewer in a real browser (WebGL2 in software): MPR and MIP of the demo CT.

The demo CT is a Shepp-Logan head with a contrast-filled vessel running obliquely through
its centre (``vesalius.demo.ct.VESSEL``); a maximum intensity projection shows it as a bright
line through the middle of the image, which the last test looks for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from e2e.harness import DemoServer, signed_in_page, viewport_pixels, wait_rendered
from vesalius.demo.ct import CT_FIELD_OF_VIEW_MM, VESSEL

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

MPR = ("axial", "sagittal", "coronal")

#: Mean luminance of the largest canvas in the element along the line through its centre in
#: direction (dx, dy) and along its mirror image (dx, -dy), between ``gap`` and ``reach``
#: (fractions of half the canvas's smaller side) from the centre, where both lines cross.
_LINES = """
(element, [dx, dy, reach, gap]) => {
  const canvases = [...element.querySelectorAll('canvas')].filter(c => c.width && c.height);
  const canvas = canvases.sort((a, b) => b.width * b.height - a.width * a.height)[0];
  const copy = document.createElement('canvas');
  copy.width = canvas.width; copy.height = canvas.height;
  const context = copy.getContext('2d');
  context.drawImage(canvas, 0, 0);
  const data = context.getImageData(0, 0, copy.width, copy.height).data;
  const cx = copy.width / 2, cy = copy.height / 2, half = Math.min(cx, cy);
  const at = (x, y) => {
    const i = (Math.round(y) * copy.width + Math.round(x)) * 4;
    return (data[i] + data[i + 1] + data[i + 2]) / 3;
  };
  const mean = (sx, sy) => {
    let sum = 0, n = 0;
    for (let t = gap; t <= reach; t += 0.002) {
      for (const s of [-1, 1]) {
        sum += at(cx + s * sx * t * half, cy + s * sy * t * half); n++;
      }
    }
    return sum / n;
  };
  return [mean(dx, dy), mean(dx, -dy)];
}
"""


def test_mpr_and_mip_render_the_phantom(
        demo_server: DemoServer, new_context: Callable[..., BrowserContext],
        artifacts: Path) -> None:
    study = demo_server.ct_study_uid
    page = signed_in_page(new_context(viewport={"width": 1280, "height": 900}), demo_server,
                          f"/viewer?study={study}&layout=mpr", "clinician")
    for name in MPR:
        wait_rendered(page, name)
    for name in MPR:
        pixels = viewport_pixels(page, name, artifacts, "10-mpr")
        assert pixels.screenshot_variance > 0, name
        assert pixels.canvas is not None and pixels.canvas["variance"] > 0, (name, pixels)

    page.goto(f"/viewer?study={study}&layout=mip")
    wait_rendered(page, "mip")
    pixels = viewport_pixels(page, "mip", artifacts, "11-mip")
    assert pixels.screenshot_variance > 0
    assert pixels.canvas is not None and pixels.canvas["variance"] > 0, pixels

    # The vessel runs through the centre in direction (60, 70) in x, y: on an axial projection
    # fitted to the viewport (256 mm across), the line in that direction, or its mirror image
    # (the display may flip an axis), is brighter than the other between 2 and 16 mm from the
    # centre (the 64 slices of 1 mm hold ~21 mm of the vessel each side).
    (x0, y0, _), (x1, y1, _) = VESSEL.start_mm, VESSEL.end_mm
    length = math.hypot(x1 - x0, y1 - y0)
    field = CT_FIELD_OF_VIEW_MM / 2
    lines = page.locator("[data-testid=viewport-mip]").evaluate(
        _LINES, [(x1 - x0) / length, (y1 - y0) / length, 16 / field, 2 / field])
    along, across = sorted(lines, reverse=True)
    assert along > across + 20, f"no bright vessel through the centre of the MIP: {lines}"
