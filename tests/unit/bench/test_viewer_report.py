"""The viewer benchmark's report: its section replaces only itself in docs/performance.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import viewer
from bench.viewer import summary


def _results(ohif: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta": {"date": "2026-01-01 00:00 UTC", "cpu": "CPU", "cores": 2, "ram_gib": 4.0,
                 "os": "Linux", "command": "python -m bench.viewer", "wall_seconds": 60.0},
        "versions": {"Vesalius": "0.1.0"}, "http_workers": None, "chromium": "1.0",
        "viewport": viewer.VIEWPORT, "study_instances": 200,
        "first_image": summary([1000, 1200, 1100, 1300, 900]),
        "mpr": summary([3000, 3100, 2900, 3200, 3050]),
        "mpr_viewports": {name: summary([1.0, 2.0]) for name in viewer.MPR},
        "ohif": ohif,
    }


def test_median_and_nearest_rank_p95() -> None:
    timings = viewer.summary([1000, 1200, 1100, 1300, 900])
    assert timings["median_ms"] == 1100
    assert timings["p95_ms"] == 1300
    assert timings["runs"] == 5


def test_section_compares_with_ohif_when_measured() -> None:
    ohif = {"measured": True, "package": "@ohif/app@3.13.2",
            "first_image": summary([2200] * 5), "mpr": summary([1500] * 5)}
    text = viewer.section(_results(ohif))
    assert text.startswith(viewer.VIEWER_START) and text.endswith(viewer.VIEWER_END)
    assert "| Time to first image | 1,100 | 2,200 | 1,300 | 2,200 | 2.00x |" in text
    assert "| Time until the three MPR viewports are rendered | 3,050 | 1,500 |" in text


def test_section_says_why_ohif_is_missing() -> None:
    text = viewer.section(_results({"measured": False, "error": "TimeoutError: 600 s"}))
    assert "OHIF was not measured in this run: TimeoutError: 600 s" in text


def test_section_of_a_failed_phase_names_the_error() -> None:
    failed = {"meta": _results({})["meta"], "error": "RuntimeError: no build"}
    assert "RuntimeError: no build" in viewer.section(failed)


def test_update_docs_replaces_only_its_own_section(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\n<!-- fhir:start -->\nFHIR\n<!-- fhir:end -->\n")
    viewer.update_docs(doc, f"{viewer.VIEWER_START}\nfirst\n{viewer.VIEWER_END}")
    viewer.update_docs(doc, f"{viewer.VIEWER_START}\nsecond\n{viewer.VIEWER_END}")
    text = doc.read_text()
    assert "FHIR" in text and "second" in text and "first" not in text
    assert text.count(viewer.VIEWER_START) == 1
