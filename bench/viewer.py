"""Viewer benchmark: time to first image and to MPR for a CT of 200+ slices, on loopback.

``python -m bench.viewer`` builds the web app if needed, starts ``vesalius serve --demo`` with
a CT of ``--slices`` slices (fresh storage), signs in through the real sign-in form as the
demo clinician in the Debian ``chromium`` (playwright, WebGL2 in software), then for each run
opens ``/viewer?study=<CT>`` and ``/viewer?study=<CT>&layout=mpr`` in a freshly loaded page
and measures, from the navigation's start (``performance.now()`` of the new document), when
the viewports report their first non-blank render (``data-rendered="true"``, the app's
readiness contract). OHIF (``@ohif/app`` from npm, see ``bench/viewer_ohif.py``) opens the
same study after each run, timed the same way (``--no-ohif`` leaves it out). Results are
merged under ``"viewer"`` into ``bench/results/latest.json`` and written between the viewer
markers of ``docs/performance.md``; ``make bench`` runs the same phase after the others
(``bench.run --viewer-runs``).

``--large-slices N`` runs a large-series check instead of the timed runs: a demo CT of ``N``
slices, opened once as a stack and once as MPR, recording whether the tab survived (no
renderer crash, the page still answers, every viewport reached ``data-rendered``), the time
to each first image, the JavaScript heap (Chrome DevTools Protocol ``Performance.getMetrics``)
and the resident memory of the browser's renderer and GPU processes while the series
streams in. It is kept under ``"viewer"."large_series"`` (the timed runs' numbers stay) and
shown in the same section; a later run without it keeps the last large-series result.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import httpx

from bench import report, viewer_ohif
from bench.client import percentile
from bench.data import cache_root
from bench.servers import Server, _vesalius_cli, _vesalius_token, _wait_ready, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request, ViewportSize

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "latest.json"
PERFORMANCE_MD = REPO / "docs" / "performance.md"
BUILD_UI = REPO / "scripts" / "build-ui.sh"
CHROMIUM = "/usr/bin/chromium"
#: Headless WebGL2 in software (SwiftShader); see the field notes.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
MPR = ("axial", "sagittal", "coronal")
VIEWER_START = "<!-- viewer:start -->"
VIEWER_END = "<!-- viewer:end -->"
DEMO_USER = "clinician"
#: Pause between two measurements (see ``settle``).
SETTLE_S = 2.0
#: Large-series check: after the first render, memory is sampled every LARGE_SAMPLE_S until no
#: frame has arrived for LARGE_QUIET_S (the series or volume is loaded) or LARGE_STREAM_S pass.
LARGE_SAMPLE_S = 2.0
LARGE_QUIET_S = 10.0
LARGE_STREAM_S = 180.0

#: Installed in every document before the app runs: when a viewport element first carries
#: data-rendered="true", note performance.now() (ms since this document's navigation began).
_RENDER_CLOCK = """
window.__rendered = {};
new MutationObserver(() => {
  for (const el of document.querySelectorAll('[data-testid^="viewport-"][data-rendered="true"]')) {
    const name = el.getAttribute('data-testid').slice('viewport-'.length);
    if (!(name in window.__rendered)) window.__rendered[name] = performance.now();
  }
}).observe(document, {subtree: true, childList: true, attributes: true,
                      attributeFilter: ['data-rendered']});
"""

OHIF_SETUP = (
    "OHIF ({package}, the npm package's prebuilt `dist/`, its default extensions and modes) "
    "opened the same study in the same browser, right after each Vesalius run: "
    "`/viewer?StudyInstanceUIDs=…` for the first image and its `mpr` hanging protocol for MPR, "
    "timed the same way (first non-blank render of its Cornerstone3D canvases, sampled each "
    "animation frame). It is served by a small local server (`bench/viewer_ohif.py`) that "
    "passes `/dicom-web` through to Vesalius, so its requests cross one more local HTTP hop "
    "than the Vesalius app's; it sends the bench client's bearer token (`system/*.cruds`), "
    "where the Vesalius app signs in as the demo clinician."
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def build_ui() -> None:
    done = subprocess.run(["sh", str(BUILD_UI)], cwd=REPO, capture_output=True, text=True,
                          timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"building the web app failed: {done.stderr[-2000:]}")


def start_demo(workdir: Path, slices: int, workers: int) -> tuple[Server, dict[str, str]]:
    """``vesalius serve --demo`` with a ``slices``-slice CT; its DICOMweb credentials."""
    workdir.mkdir(parents=True)
    port = free_port()
    exe, env = _vesalius_cli()
    env = {**env, "VESALIUS_DEMO_CT_SLICES": str(slices)}
    log_path = workdir / "server.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [exe, "serve", "--demo", "--data-dir", str(workdir / "data"),
             "--host", "127.0.0.1", "--http-port", str(port), "--dicom-port", "0",
             *(["--http-workers", str(workers)] if workers else [])],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    server = Server("Vesalius", base, base + "/dicom-web", process.pid, workdir, process)
    try:
        # The demo (two CTs of ``slices`` slices) is generated and stored before it listens.
        server.version = str(_wait_ready(server, "/healthz", log_path, timeout=900)
                             .json().get("version", ""))
        headers = _vesalius_token(exe, env, workdir / "data", port)
    except BaseException:
        server.stop()
        raise
    return server, headers


def demo_password(server: Server, username: str) -> str:
    """The password ``serve --demo`` prints for a demo account (as a person reads it)."""
    printed = re.search(rf"^\s+{re.escape(username)}\s+password (\S+)",
                        (server.workdir / "server.log").read_text(errors="replace"),
                        re.MULTILINE)
    if printed is None:
        raise RuntimeError(f"serve --demo printed no password for {username}")
    return printed.group(1)


def current_ct(server: Server, headers: dict[str, str]) -> tuple[str, int]:
    """The newest CT study (QIDO-RS) and its number of instances."""
    response = httpx.get(f"{server.dicomweb}/studies", headers=headers, timeout=30,
                         params={"ModalitiesInStudy": "CT", "includefield": "00201208"})
    response.raise_for_status()
    newest = max(response.json(), key=lambda s: s["00080020"]["Value"][0])
    return newest["0020000D"]["Value"][0], int(newest["00201208"]["Value"][0])


def sign_in(page: Page, server: Server) -> None:
    page.goto(server.base_url + "/")
    page.wait_for_url("**/auth/**")
    page.locator("#username").fill(DEMO_USER)
    page.locator("#password").fill(demo_password(server, DEMO_USER))
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: "/auth/" not in url and "/callback" not in url)


def open_viewer(page: Page, url: str, viewports: tuple[str, ...],
                timeout_s: float) -> dict[str, float]:
    """Load ``url`` as a new document; ms from its navigation start to each viewport's first
    render. The session (in the tab's storage) survives the reload, the images do not."""
    page.goto(url, wait_until="commit")
    for name in viewports:
        page.locator(f"[data-testid=viewport-{name}][data-rendered=true]").wait_for(
            timeout=timeout_s * 1000)
    rendered: dict[str, float] = page.evaluate("window.__rendered")
    settle(page)
    return {name: rendered[name] for name in viewports}


def settle(page: Page) -> None:
    """Leave the viewer at once, so its remaining loading (the rest of the series, the
    volume) does not compete with the next measurement, and give the server a moment to
    finish the requests it already has."""
    page.goto("about:blank")
    time.sleep(SETTLE_S)


def summary(values_ms: list[float]) -> dict[str, Any]:
    seconds = [v / 1000 for v in values_ms]
    return {"median_ms": percentile(seconds, 50) * 1000, "p95_ms": percentile(seconds, 95) * 1000,
            "runs": len(values_ms), "ms": values_ms}


class Ohif:
    """OHIF's side of the runs: its own browser context (the bench's bearer token on every
    request), a failure recorded instead of ending the Vesalius runs."""

    def __init__(self, browser: Browser, base: str, headers: dict[str, str], study: str,
                 timeout_s: float) -> None:
        self.stack_url = f"{base}/viewer?StudyInstanceUIDs={study}"
        self.mpr_url = f"{self.stack_url}&hangingProtocolId=mpr"
        self.timeout_s = timeout_s
        self.first: list[float] = []
        self.mpr: list[float] = []
        self.error = ""
        context = browser.new_context(viewport=VIEWPORT, extra_http_headers=headers)
        context.add_init_script(viewer_ohif.RENDER_CLOCK)
        self.page = context.new_page()

    def run(self, timed: bool) -> str:
        if self.error:
            return ""
        try:
            first = viewer_ohif.open_ohif(self.page, self.stack_url, 1, self.timeout_s)
            mpr = viewer_ohif.open_ohif(self.page, self.mpr_url, len(MPR), self.timeout_s)
        except Exception as exc:  # playwright's errors: recorded, OHIF is left out
            self.error = f"{type(exc).__name__}: {exc}"[:500]
            log(f"  ERROR OHIF: {self.error}")
            return ""
        if timed:
            self.first.append(first)
            self.mpr.append(mpr)
        return f"; OHIF first image {first:.0f} ms, MPR {mpr:.0f} ms"

    def results(self) -> dict[str, Any]:
        out: dict[str, Any] = {"measured": bool(self.first), "package":
                               f"{viewer_ohif.OHIF_PACKAGE}@{viewer_ohif.OHIF_VERSION}"}
        if self.first:
            out.update(first_image=summary(self.first), mpr=summary(self.mpr))
        if self.error:
            out["error"] = self.error
        return out


def measure(server: Server, headers: dict[str, str], runs: int, timeout_s: float,
            ohif: bool) -> dict[str, Any]:
    """One untimed warm-up of each layout, then ``runs`` timed opens of each; with ``ohif``
    OHIF opens the same study right after each of ours (interleaved, so both see the same
    load on this shared machine)."""
    from playwright.sync_api import sync_playwright

    study, instances = current_ct(server, headers)
    log(f"CT study {study}: {instances} instances")
    stack_url = f"{server.base_url}/viewer?study={study}"
    mpr_url = f"{stack_url}&layout=mpr"
    first: list[float] = []
    mpr: list[float] = []
    per_view: dict[str, list[float]] = {name: [] for name in MPR}
    with contextlib.ExitStack() as stack:
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        stack.callback(browser.close)
        peer: Ohif | None = None
        if ohif:
            base = stack.enter_context(viewer_ohif.serve_ohif(server.base_url))
            peer = Ohif(browser, base, headers, study, timeout_s)
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(_RENDER_CLOCK)
        page = context.new_page()
        sign_in(page, server)
        log("signed in; warm-up (untimed)")
        open_viewer(page, stack_url, ("stack",), timeout_s)
        open_viewer(page, mpr_url, MPR, timeout_s)
        if peer:
            peer.run(timed=False)
        for run in range(runs):
            one = open_viewer(page, stack_url, ("stack",), timeout_s)["stack"]
            views = open_viewer(page, mpr_url, MPR, timeout_s)
            first.append(one)
            mpr.append(max(views.values()))
            for name in MPR:
                per_view[name].append(views[name])
            other = peer.run(timed=True) if peer else ""
            log(f"  run {run + 1}: first image {one:.0f} ms, MPR {mpr[-1]:.0f} ms "
                f"({', '.join(f'{n} {v:.0f}' for n, v in views.items())}){other}")
        version = browser.version
    out: dict[str, Any] = {
        "study_instances": instances, "chromium": version, "viewport": VIEWPORT,
        "first_image": summary(first), "mpr": summary(mpr),
        "mpr_viewports": {name: summary(values) for name, values in per_view.items()},
    }
    out["ohif"] = peer.results() if peer else {"measured": False, "reason": "--no-ohif"}
    return out


def _process_tree(root: int) -> dict[int, str]:
    """Command lines of ``root``'s descendants (Linux ``/proc``): the playwright driver this
    process started and the browser it launched, not other Chromium instances on the machine."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ") \
                .decode(errors="replace")
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = commands.get(pid, "")
                frontier.append(pid)
    return found


def _rss_mib(pid: int) -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def browser_memory() -> dict[str, float]:
    """Resident memory (MiB) of this process's Chromium renderers and GPU process (where
    SwiftShader keeps the textures)."""
    renderer = gpu = 0.0
    for pid, command in _process_tree(os.getpid()).items():
        if "--type=renderer" in command:
            renderer += _rss_mib(pid)
        elif "--type=gpu-process" in command:
            gpu += _rss_mib(pid)
    return {"renderer_rss_mib": renderer, "gpu_rss_mib": gpu}


def js_heap_mib(cdp: Any) -> float:
    """The page's used JavaScript heap (MiB), from DevTools' ``Performance.getMetrics``
    (precise, unlike ``performance.memory``; ArrayBuffer contents are counted only in part)."""
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return float(metrics.get("JSHeapUsedSize", 0.0)) / 2**20


def open_large(page: Page, cdp: Any, url: str, viewports: tuple[str, ...],
               timeout_s: float, frames: list[int], crashed: list[bool]) -> dict[str, Any]:
    """Open ``url`` once: first renders, then memory while the series keeps streaming, then
    whether the tab still answers."""
    out: dict[str, Any] = {"url": url.split("/viewer", 1)[1], "viewports": list(viewports)}
    frames_at_start = frames[0]
    started = time.monotonic()
    try:
        page.goto(url, wait_until="commit")
        for name in viewports:
            page.locator(f"[data-testid=viewport-{name}][data-rendered=true]").wait_for(
                timeout=timeout_s * 1000)
        rendered: dict[str, float] = page.evaluate("window.__rendered")
        out["rendered_ms"] = {name: rendered[name] for name in viewports}
        out["first_image_ms"] = min(out["rendered_ms"].values())
        out["all_rendered_ms"] = max(out["rendered_ms"].values())
        out["heap_at_first_render_mib"] = js_heap_mib(cdp)
        samples: list[dict[str, float]] = []
        last_frames, last_change = frames[0], time.monotonic()
        while time.monotonic() - started < LARGE_STREAM_S and not crashed:
            time.sleep(LARGE_SAMPLE_S)
            samples.append({"t_s": time.monotonic() - started, "frames": frames[0] -
                            frames_at_start, "heap_mib": js_heap_mib(cdp), **browser_memory()})
            if frames[0] != last_frames:
                last_frames, last_change = frames[0], time.monotonic()
            elif time.monotonic() - last_change >= LARGE_QUIET_S:
                break
        out["samples"] = samples
        out["peak_heap_mib"] = max([out["heap_at_first_render_mib"],
                                    *(s["heap_mib"] for s in samples)])
        out["peak_renderer_rss_mib"] = max((s["renderer_rss_mib"] for s in samples), default=0)
        out["peak_gpu_rss_mib"] = max((s["gpu_rss_mib"] for s in samples), default=0)
        status = page.locator("[data-testid=viewer] [role=status]").all_inner_texts()
        step = re.search(r"every (\d+)\w* slice", " ".join(status))
        out["volume_step"] = int(step.group(1)) if step else 1
        # Still answering: a script runs and the viewports still carry their signal.
        out["responds"] = page.evaluate(
            "(names) => names.every(n => document.querySelector("
            "`[data-testid=viewport-${n}]`)?.dataset.rendered === 'true')",
            list(viewports))
    except Exception as exc:  # playwright's errors (a crashed tab, a timeout): recorded
        out["error"] = f"{type(exc).__name__}: {exc}"[:500]
        out["responds"] = False
    out["frames_loaded"] = frames[0] - frames_at_start
    out["crashed"] = bool(crashed)
    out["survived"] = not crashed and bool(out["responds"]) and "rendered_ms" in out
    out["wall_s"] = time.monotonic() - started
    return out


def _watch(page: Page) -> tuple[list[bool], list[int]]:
    """A flag set when the page's renderer crashes, and a count of the frames it loaded."""
    crashed: list[bool] = []
    frames = [0]

    def on_crash(_page: Page) -> None:
        crashed.append(True)

    def on_request(request: Request) -> None:
        if "/frames/" in request.url:
            frames[0] += 1

    page.on("crash", on_crash)
    page.on("requestfinished", on_request)
    return crashed, frames


def measure_large(server: Server, headers: dict[str, str], timeout_s: float) -> dict[str, Any]:
    """The large series opened as a stack, then as MPR, each in a freshly loaded page."""
    from playwright.sync_api import sync_playwright

    study, instances = current_ct(server, headers)
    log(f"CT study {study}: {instances} instances")
    stack_url = f"{server.base_url}/viewer?study={study}"
    out: dict[str, Any] = {"study_instances": instances, "viewport": VIEWPORT}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            out["chromium"] = browser.version
            for layout, url, viewports in (("stack", stack_url, ("stack",)),
                                           ("mpr", f"{stack_url}&layout=mpr", MPR)):
                # A context of its own for each layout (signed in afresh): a crash or the
                # memory of one does not carry over to the other.
                context = browser.new_context(viewport=VIEWPORT)
                context.add_init_script(_RENDER_CLOCK)
                page = context.new_page()
                crashed, frames = _watch(page)
                cdp = context.new_cdp_session(page)
                cdp.send("Performance.enable")
                sign_in(page, server)
                log(f"opening the {instances}-slice CT as {layout}")
                out[layout] = result = open_large(page, cdp, url, viewports, timeout_s, frames,
                                                  crashed)
                log(f"  {layout}: survived {result['survived']}, first image "
                    f"{_ms(result.get('first_image_ms'))} ms, all rendered "
                    f"{_ms(result.get('all_rendered_ms'))} ms, peak heap "
                    f"{result.get('peak_heap_mib', 0):.0f} MiB, renderer "
                    f"{result.get('peak_renderer_rss_mib', 0):.0f} MiB, GPU process "
                    f"{result.get('peak_gpu_rss_mib', 0):.0f} MiB, {result['frames_loaded']} "
                    f"frames{', ' + result['error'] if 'error' in result else ''}")
                with contextlib.suppress(Exception):
                    context.close()
        finally:
            browser.close()
    return out


def run_large(slices: int, workers: int, keep: bool, timeout_s: float) -> dict[str, Any]:
    """Build, serve a demo with ``slices``-slice CTs, check, stop: ``"large_series"``."""
    build_ui()
    cache_root().mkdir(parents=True, exist_ok=True)
    workroot = Path(tempfile.mkdtemp(prefix="viewer-large-", dir=cache_root()))
    started = time.monotonic()
    log(f"starting vesalius serve --demo with {slices}-slice CTs (the demo loads first)")
    server, headers = start_demo(workroot / "vesalius", slices, workers)
    demo_s = time.monotonic() - started
    log(f"Vesalius {server.version} at {server.base_url} (pid {server.pid}), demo loaded in "
        f"{demo_s:.0f} s")
    try:
        out = measure_large(server, headers, timeout_s)
    finally:
        log(f"stopping Vesalius (pid {server.pid})")
        server.stop()
        if not keep:
            shutil.rmtree(workroot, ignore_errors=True)
    out.update(slices=slices, demo_load_s=demo_s, http_workers=workers or None,
               versions={server.name: server.version})
    return out


def run_phase(slices: int, runs: int, workers: int, keep: bool, timeout_s: float,
              ohif: bool = True) -> dict[str, Any]:
    """Build, serve, measure, stop: the ``"viewer"`` part of the results."""
    build_ui()
    cache_root().mkdir(parents=True, exist_ok=True)
    workroot = Path(tempfile.mkdtemp(prefix="viewer-", dir=cache_root()))
    started = time.monotonic()
    log(f"starting vesalius serve --demo with a {slices}-slice CT (the demo loads first)")
    server, headers = start_demo(workroot / "vesalius", slices, workers)
    log(f"Vesalius {server.version} at {server.base_url} (pid {server.pid}), demo loaded in "
        f"{time.monotonic() - started:.0f} s")
    try:
        out = measure(server, headers, runs, timeout_s, ohif)
    finally:
        log(f"stopping Vesalius (pid {server.pid})")
        server.stop()
        if not keep:
            shutil.rmtree(workroot, ignore_errors=True)
    out.update(slices=slices, http_workers=workers or None, servers=[server.name],
               versions={server.name: server.version})
    return out


def describe(command: str, started: float, load_at_start: list[float]) -> dict[str, Any]:
    return {
        **report.environment([]),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command, "wall_seconds": time.monotonic() - started,
        "load_average_at_start": load_at_start, "load_average_at_end": list(os.getloadavg()),
    }


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def section(viewer: dict[str, Any]) -> str:
    """The "Viewer" section of ``docs/performance.md``, between its markers."""
    meta = viewer["meta"]
    if "first_image" not in viewer:
        return "\n".join([VIEWER_START, "## Viewer", "",
                          f"Not measured in the run of {meta['date']} (`{meta['command']}`): "
                          f"{viewer.get('error', 'no results')}", "",
                          *_large_lines(viewer.get("large_series")), VIEWER_END])
    first, mpr = viewer["first_image"], viewer["mpr"]
    lines = [
        VIEWER_START, "## Viewer", "",
        "Generated by `bench/viewer.py` (standalone: `python -m bench.viewer`; `make bench` "
        "runs the same phase last); raw numbers under `\"viewer\"` in "
        "`bench/results/latest.json`.",
        "",
        f"- Date: {meta['date']}",
        f"- Machine: {meta['cpu']}, {meta['cores']} cores, {meta['ram_gib']} GiB RAM; "
        f"{meta['os']}",
        f"- Vesalius {viewer['versions'].get('Vesalius')} (`vesalius serve --demo`, embedded "
        "SQLite, HTTP workers: "
        f"{viewer['http_workers'] or 'default (one per core)'}), on loopback",
        f"- Browser: Debian Chromium {viewer['chromium']}, headless, WebGL2 in software "
        "(SwiftShader: no GPU on this machine, so every frame is drawn by the CPU that also "
        f"runs the server), window {viewer['viewport']['width']}x"
        f"{viewer['viewport']['height']}",
        f"- Command: `{meta['command']}`; wall time {meta['wall_seconds'] / 60:.1f} min"
        + report._load(meta),
        f"- Data: the demo's current CT head, {viewer['study_instances']} axial slices of "
        "512x512, 16-bit, uncompressed (Explicit VR Little Endian)",
        "- Each run loads the viewer as a new document (the JavaScript comes from the "
        "browser's cache, the images from the server: nothing is kept between runs); times "
        "run from the navigation's start to the viewport's first non-blank render "
        "(`data-rendered=\"true\"`). Right after, the page goes blank and the bench waits "
        f"{SETTLE_S:.0f} s, so no viewer keeps loading during the next measurement. One "
        "untimed warm-up of each layout first.",
        "",
        "| Measure (Vesalius) | Median (ms) | p95 (ms) | Runs (ms) |",
        "|---|---:|---:|---|",
        f"| Time to first image (stack, `/viewer?study=…`) | {_ms(first['median_ms'])} "
        f"| {_ms(first['p95_ms'])} | {', '.join(_ms(v) for v in first['ms'])} |",
        f"| Time until axial, sagittal and coronal are rendered (`&layout=mpr`) "
        f"| {_ms(mpr['median_ms'])} | {_ms(mpr['p95_ms'])} "
        f"| {', '.join(_ms(v) for v in mpr['ms'])} |",
    ]
    for name, values in viewer["mpr_viewports"].items():
        lines.append(f"| — {name} | {_ms(values['median_ms'])} | {_ms(values['p95_ms'])} "
                     f"| {', '.join(_ms(v) for v in values['ms'])} |")
    lines += ["", *_ohif_lines(viewer.get("ohif", {}), first, mpr),
              *_large_lines(viewer.get("large_series")), VIEWER_END]
    return "\n".join(lines)


def _ohif_lines(ohif: dict[str, Any], first: dict[str, Any], mpr: dict[str, Any]) -> list[str]:
    """The peer's table (ratios > 1: Vesalius is faster), or why it is missing."""
    if not ohif.get("measured"):
        why = ohif.get("error") or ohif.get("reason") or "not run"
        return [f"OHIF was not measured in this run: {why}", ""]
    lines = [OHIF_SETUP.format(package=f"`{ohif['package']}`"),
             f"A ratio above 1 means Vesalius was faster; with {first['runs']} runs, p95 "
             "(nearest rank) is the slowest run.",
             "",
             "| Measure | Vesalius median (ms) | OHIF median (ms) | Vesalius p95 (ms) "
             "| OHIF p95 (ms) | OHIF / Vesalius (median) | OHIF runs (ms) |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for label, ours, theirs in (("Time to first image", first, ohif["first_image"]),
                                ("Time until the three MPR viewports are rendered", mpr,
                                 ohif["mpr"])):
        ratio = theirs["median_ms"] / ours["median_ms"] if ours["median_ms"] else None
        lines.append(f"| {label} | {_ms(ours['median_ms'])} | {_ms(theirs['median_ms'])} "
                     f"| {_ms(ours['p95_ms'])} | {_ms(theirs['p95_ms'])} "
                     f"| {'—' if ratio is None else f'{ratio:.2f}x'} "
                     f"| {', '.join(_ms(v) for v in theirs['ms'])} |")
    if ohif.get("error"):
        lines.append(f"\nOHIF error after some runs: {ohif['error']}")
    lines += ["", "Both viewers fill the MPR volume progressively: these times are until each "
              "of the three viewports first shows the CT, not until every slice is loaded.", ""]
    return lines


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _large_lines(large: dict[str, Any] | None) -> list[str]:
    """The large-series check (``--large-slices``), when one was run."""
    if not large:
        return []
    meta = large.get("meta", {})
    lines = [
        "### Large series", "",
        f"`{meta.get('command', 'python -m bench.viewer --large-slices N')}` on "
        f"{meta.get('date', '?')} (wall time {meta.get('wall_seconds', 0) / 60:.1f} min"
        + report._load(meta) + "): the demo with CTs of "
        f"{large['study_instances']} slices of 512x512 (generated and stored in "
        f"{large['demo_load_s']:.0f} s), opened once as a stack and once as MPR, each in a "
        "freshly loaded page of the same browser and window. After the first render the "
        f"memory is sampled every {LARGE_SAMPLE_S:.0f} s until no frame has arrived for "
        f"{LARGE_QUIET_S:.0f} s (or {LARGE_STREAM_S:.0f} s pass). JS heap: DevTools' "
        "`JSHeapUsedSize` (image pixels held in ArrayBuffers are only partly counted there); "
        "renderer and GPU process: resident memory of the browser's processes (SwiftShader "
        "keeps the textures in the GPU process).",
        "",
        "| Layout | Tab survived | First image (ms) | All viewports (ms) | Frames loaded "
        "| Volume slices used | JS heap at first image (MiB) | Peak JS heap (MiB) "
        "| Peak renderer RSS (MiB) | Peak GPU process RSS (MiB) |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for layout in ("stack", "mpr"):
        run = large.get(layout)
        if not run:
            continue
        survived = "yes" if run["survived"] else (
            "no (renderer crashed)" if run.get("crashed") else "no")
        step = run.get("volume_step", 1)
        used = "—" if layout == "stack" else (
            "all" if step == 1 else f"1 in {step} ({-(-large['study_instances'] // step)})")
        lines.append(
            f"| {layout} | {survived} | {_ms(run.get('first_image_ms'))} "
            f"| {_ms(run.get('all_rendered_ms'))} | {run.get('frames_loaded', 0):,} | {used} "
            f"| {_mib(run.get('heap_at_first_render_mib'))} "
            f"| {_mib(run.get('peak_heap_mib'))} | {_mib(run.get('peak_renderer_rss_mib'))} "
            f"| {_mib(run.get('peak_gpu_rss_mib'))} |")
    errors = [f"{layout}: {large[layout]['error']}" for layout in ("stack", "mpr")
              if large.get(layout, {}).get("error")]
    if errors:
        lines += ["", "Errors: " + "; ".join(errors)]
    return [*lines, ""]


def update_docs(path: Path, text_section: str) -> None:
    """Replace the text between the viewer markers (or append it): other sections stay."""
    report.replace_section(path, VIEWER_START, VIEWER_END, text_section)


def merge_results(path: Path, viewer: dict[str, Any]) -> None:
    """``"viewer"`` replaced, every other key kept."""
    report.merge_results(path, "viewer", viewer)


def previous_viewer(path: Path) -> dict[str, Any] | None:
    """The ``"viewer"`` results of the last run, if any."""
    with contextlib.suppress(OSError, ValueError):
        found = json.loads(path.read_text()).get("viewer")
        return found if isinstance(found, dict) else None
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.viewer", description=__doc__)
    parser.add_argument("--slices", type=int, default=200,
                        help="slices of the demo CT (default %(default)s; the target is 200+)")
    parser.add_argument("--runs", type=int, default=5, help="timed opens of each layout")
    parser.add_argument("--http-workers", type=int, default=0,
                        help="the server's HTTP workers (default: one per core)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds one viewer load may take before the run fails")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-docs", action="store_true",
                        help="write only the JSON results, not docs/performance.md")
    parser.add_argument("--keep", action="store_true", help="keep the server's data directory")
    parser.add_argument("--no-ohif", action="store_true",
                        help="skip OHIF (@ohif/app from npm, fetched once with npm pack)")
    parser.add_argument("--large-slices", type=int, default=0, metavar="N",
                        help="instead of the timed runs, check a CT of N slices (e.g. 1000): "
                        "tab survival, first images, memory (default 0: off)")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        parser.error(f"{CHROMIUM} is missing (Debian package chromium; make system-deps)")

    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    load_at_start = list(os.getloadavg())
    words = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python -m bench.viewer", *words])
    previous = previous_viewer(args.results)
    if args.large_slices > 0:
        large = run_large(args.large_slices, args.http_workers, args.keep, args.timeout)
        large["meta"] = describe(command, started, load_at_start)
        # The timed runs' numbers stay as they were.
        viewer = previous or {"meta": describe(command, started, load_at_start),
                              "error": "only the large-series check was run"}
        viewer["large_series"] = large
    else:
        viewer = run_phase(args.slices, args.runs, args.http_workers, args.keep,
                           args.timeout, ohif=not args.no_ohif)
        viewer["meta"] = describe(command, started, load_at_start)
        if previous and "large_series" in previous:
            viewer["large_series"] = previous["large_series"]
    merge_results(args.results, viewer)
    log(f"raw results: {args.results} (key \"viewer\")")
    if not args.no_docs:
        update_docs(PERFORMANCE_MD, section(viewer))
        log(f"report: {PERFORMANCE_MD}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; server stopped")
        sys.exit(130)
