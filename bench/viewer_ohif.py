"""OHIF beside the Vesalius viewer: the prebuilt ``@ohif/app`` on the same CT, same browser.

OHIF's ``dist/`` is taken from the npm package (``npm pack``, checked against the registry's
integrity hash, cached under the bench directory) and served by a small local server that
also passes ``/dicom-web`` through to Vesalius, so OHIF runs same-origin with its DICOMweb
root, as it would behind a site's reverse proxy. Vesalius refuses anonymous DICOMweb: the
browser context sends the bench's bearer token with every request (playwright's extra HTTP
headers), so the pass-through adds nothing but the hop itself. Each OHIF request therefore
crosses one more local HTTP server than the Vesalius app's do; the report says so.

First image and MPR: OHIF's viewport canvases (``canvas.cornerstone-canvas``, Cornerstone3D
like ours) sampled each animation frame on the same grid the Vesalius app uses for
``data-rendered``; MPR is OHIF's own ``mpr`` hanging protocol (axial, sagittal, coronal).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import subprocess
import tarfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from bench.data import cache_root
from bench.servers import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page

OHIF_PACKAGE = "@ohif/app"
OHIF_VERSION = "3.13.2"
#: The registry's ``dist.integrity`` of that version (``npm view @ohif/app@3.13.2 dist``).
OHIF_INTEGRITY = ("sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKx"
                  "Ffpq+jd5xXZB9E8EA==")
#: Pause after each measurement, as for the Vesalius app (``bench.viewer.settle``).
SETTLE_S = 2.0
#: Request headers passed through to Vesalius (everything DICOMweb needs), and back.
_FORWARD = ("accept", "authorization", "range", "if-none-match")
_BACK = ("content-type", "content-length", "etag", "cache-control", "content-range")

APP_CONFIG = """window.config = {
  routerBasename: null,
  extensions: [],
  modes: [],
  customizationService: {},
  showStudyList: true,
  maxNumberOfWebWorkers: 3,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  defaultDataSourceName: 'vesalius',
  investigationalUseDialog: { option: 'never' },
  dataSources: [{
    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
    sourceName: 'vesalius',
    configuration: {
      friendlyName: 'Vesalius',
      name: 'vesalius',
      wadoUriRoot: window.location.origin + '/dicom-web',
      qidoRoot: window.location.origin + '/dicom-web',
      wadoRoot: window.location.origin + '/dicom-web',
      qidoSupportsIncludeField: true,
      imageRendering: 'wadors',
      thumbnailRendering: 'wadors',
      enableStudyLazyLoad: true,
      supportsFuzzyMatching: false,
      supportsWildcard: true,
      staticWado: false,
      singlepart: 'bulkdata,video',
      bulkDataURI: { enabled: true, relativeResolution: 'studies' },
      omitQuotationForMultipartRequest: true,
    },
  }],
};
"""

#: Installed in every OHIF document: each time one more viewport canvas shows something (is
#: not one colour), note performance.now() (ms since the navigation began), so
#: ``__rendered[0]`` is the first image and ``__rendered[2]`` the third viewport's.
RENDER_CLOCK = """
window.__rendered = [];
(() => {
  const probe = document.createElement('canvas');
  const done = new WeakSet();
  const hasContent = (canvas) => {
    if (!canvas.width || !canvas.height) return false;
    probe.width = canvas.width; probe.height = canvas.height;
    const context = probe.getContext('2d', {willReadFrequently: true});
    context.drawImage(canvas, 0, 0);
    const data = context.getImageData(0, 0, probe.width, probe.height).data;
    let min = 255, max = 0;
    for (let j = 1; j < 24; j++) for (let i = 1; i < 24; i++) {
      const x = Math.floor(probe.width * i / 24), y = Math.floor(probe.height * j / 24);
      const o = (y * probe.width + x) * 4;
      const v = Math.max(data[o], data[o + 1], data[o + 2]);
      min = Math.min(min, v); max = Math.max(max, v);
    }
    return max - min > 8;
  };
  const look = () => {
    for (const canvas of document.querySelectorAll('canvas.cornerstone-canvas')) {
      if (!done.has(canvas) && hasContent(canvas)) {
        done.add(canvas);
        window.__rendered.push(performance.now());
      }
    }
    requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
})();
"""


def _integrity(path: Path) -> str:
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def ohif_dist() -> Path:
    """OHIF's prebuilt ``dist/``, unpacked once from the registry's tarball."""
    root = cache_root() / "ohif" / f"app-{OHIF_VERSION}"
    dist = root / "package" / "dist"
    if (dist / "index.html").exists():
        return dist
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "pack", f"{OHIF_PACKAGE}@{OHIF_VERSION}", "--silent"], cwd=root,
                   check=True, capture_output=True, timeout=600)
    tarball = root / f"ohif-app-{OHIF_VERSION}.tgz"
    if _integrity(tarball) != OHIF_INTEGRITY:
        tarball.unlink()
        raise RuntimeError(f"{tarball.name} does not match the registry's integrity hash")
    with tarfile.open(tarball) as archive:
        archive.extractall(root, filter="data")
    tarball.unlink()
    return dist


def ohif_app(dist: Path, upstream: str) -> Starlette:
    """OHIF's files (hashed bundles cached like the Vesalius app's, index.html for the app's
    routes) and ``/dicom-web`` streamed through to ``upstream``."""
    client = httpx.AsyncClient(base_url=upstream, timeout=120)
    root = dist.resolve()

    async def dicomweb(request: Request) -> Response:
        url = httpx.URL(path=request.url.path, query=request.url.query.encode())
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARD}
        answer = await client.send(client.build_request(request.method, url, headers=headers),
                                   stream=True)

        async def body() -> AsyncIterator[bytes]:
            async for chunk in answer.aiter_raw():
                yield chunk

        return StreamingResponse(body(), status_code=answer.status_code,
                                 headers={k: v for k, v in answer.headers.items()
                                          if k.lower() in _BACK},
                                 background=BackgroundTask(answer.aclose))

    async def files(request: Request) -> Response:
        path = request.url.path
        if path == "/app-config.js":
            return Response(APP_CONFIG, media_type="text/javascript",
                            headers={"Cache-Control": "no-cache"})
        target = (root / path.lstrip("/")).resolve()
        if path != "/" and target.is_file() and target.is_relative_to(root):
            hashed = ".bundle." in target.name or target.suffix in (".wasm", ".woff2")
            return FileResponse(target, headers={
                "Cache-Control": "public, max-age=31536000, immutable" if hashed
                else "no-cache"})
        return FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})

    return Starlette(routes=[
        Route("/dicom-web/{rest:path}", dicomweb, methods=["GET", "HEAD"]),
        Route("/{rest:path}", files, methods=["GET", "HEAD"]),
    ])


@contextlib.contextmanager
def serve_ohif(upstream: str) -> Iterator[str]:
    """OHIF at a loopback address for the duration of the block (a thread of this process)."""
    port = free_port()
    config = uvicorn.Config(ohif_app(ohif_dist(), upstream), host="127.0.0.1", port=port,
                            log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the OHIF server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def open_ohif(page: Page, url: str, viewports: int, timeout_s: float) -> float:
    """Load OHIF's viewer at ``url`` as a new document; ms until ``viewports`` of its
    viewport canvases have shown something."""
    page.goto(url, wait_until="commit")
    page.wait_for_function(f"window.__rendered.length >= {viewports}",
                           timeout=timeout_s * 1000, polling=100)
    rendered: list[float] = page.evaluate("window.__rendered")
    # Stop OHIF's prefetching of the rest of the series before the next measurement.
    page.goto("about:blank")
    time.sleep(SETTLE_S)
    return rendered[viewports - 1]


def describe_config() -> dict[str, Any]:
    """What the report says about OHIF's setup."""
    return {"package": f"{OHIF_PACKAGE}@{OHIF_VERSION}", "app_config": json.dumps(APP_CONFIG)}
