"""Helpers shared by the DICOMweb route modules."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from functools import wraps
from typing import Any, TypeVar

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from vesalius.core.errors import VesaliusError
from vesalius.dicom.json_model import BULK_BASE_MARKER
from vesalius.guard import ArchiveGuard
from vesalius.web.principal import archive_for
from vesalius.web.problems import problem_for

T = TypeVar("T")
Endpoint = Callable[[Request], Awaitable[Response]]

DICOM_JSON = "application/dicom+json"


def service(request: Request) -> ArchiveGuard:
    """The archive as this request's caller may use it."""
    return archive_for(request)


def base_url(request: Request) -> str:
    """Public base URL of the DICOMweb root, ending with '/'."""
    root = request.scope.get("root_path", "")
    return f"{request.url.scheme}://{request.url.netloc}{root}/"


def resolve_markers(text: str, request: Request) -> str:
    return text.replace(BULK_BASE_MARKER, base_url(request))


def guarded(endpoint: Endpoint) -> Endpoint:
    """Translate domain errors into problem responses; nothing else escapes as a 500 body."""

    @wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except VesaliusError as error:
            return problem_for(error)

    return wrapper


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await run_in_threadpool(fn, *args, **kwargs)


def new_boundary() -> str:
    return uuid.uuid4().hex


def multipart_parts(parts: Iterable[tuple[dict[str, str], Iterable[bytes]]],
                    boundary: str) -> Iterator[bytes]:
    """Serialize parts as a multipart/related body (RFC 2387), streaming each part."""
    for headers, chunks in parts:
        head = f"--{boundary}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        yield head.encode("ascii")
        yield from chunks
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("ascii")


def threaded_stream(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Run a blocking chunk iterator in the threadpool, one chunk at a time."""
    return iterate_in_threadpool(chunks)
