"""The viewer benchmark's large-series check in its report (``--large-slices``)."""

from __future__ import annotations

from typing import Any

from bench import viewer


def _large() -> dict[str, Any]:
    run = {"survived": True, "crashed": False, "first_image_ms": 2100.0,
           "all_rendered_ms": 2100.0, "frames_loaded": 1000, "volume_step": 1,
           "heap_at_first_render_mib": 40.0, "peak_heap_mib": 60.0,
           "peak_renderer_rss_mib": 900.0, "peak_gpu_rss_mib": 300.0}
    return {"study_instances": 1000, "demo_load_s": 200.0,
            "meta": {"command": "python -m bench.viewer --large-slices 1000",
                     "date": "2026-01-01 00:00 UTC", "wall_seconds": 600.0},
            "stack": run,
            "mpr": {**run, "survived": False, "crashed": True, "volume_step": 3,
                    "first_image_ms": None, "all_rendered_ms": None, "error": "crashed"}}


def test_large_series_table() -> None:
    text = "\n".join(viewer._large_lines(_large()))
    assert "### Large series" in text
    assert "| stack | yes | 2,100 | 2,100 | 1,000 | — | 40 | 60 | 900 | 300 |" in text
    assert "| mpr | no (renderer crashed) | — | — | 1,000 | 1 in 3 (334) |" in text
    assert "Errors: mpr: crashed" in text


def test_section_without_large_series_is_unchanged() -> None:
    assert viewer._large_lines(None) == []


def test_not_measured_section_still_shows_large_series() -> None:
    results = {"meta": {"date": "d", "command": "c"}, "error": "only the large-series check",
               "large_series": _large()}
    text = viewer.section(results)
    assert "Not measured" in text and "### Large series" in text
    assert text.endswith(viewer.VIEWER_END)
