"""WADO-RS retrieval (PS3.18 §10.4): instances, metadata, frames, bulk data, rendered."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from vesalius.archive.index.records import StoredInstance
from vesalius.core.errors import InvalidInput, NotAcceptable
from vesalius.dicom.transcode import (
    MEDIA_TYPE_BY_TRANSFER_SYNTAX,
    dataset_to_bytes,
    to_explicit_vr_little_endian,
)
from vesalius.guard import ArchiveGuard
from vesalius.render.image import render, thumbnail
from vesalius.web.dicomweb.common import (
    DICOM_JSON,
    blocking,
    guarded,
    multipart_parts,
    new_boundary,
    resolve_markers,
    service,
    threaded_stream,
)
from vesalius.web.dicomweb.negotiation import MediaRange, matches, parse_accept

EXPLICIT_LE = "1.2.840.10008.1.2.1"


def _ids(request: Request) -> tuple[str, str | None, str | None]:
    p = request.path_params
    return p["study"], p.get("series"), p.get("instance")


def _dicom_transfer_syntax(request: Request) -> str:
    """Transfer syntax asked for application/dicom; '*' keeps what is stored.

    Without a transfer-syntax parameter PS3.18 §8.7.3.5.2 makes Explicit VR
    Little Endian the default.
    """
    for media in parse_accept(request.headers.get("accept")):
        if media.type == "multipart/related":
            related = (media.related_type or "application/dicom").lower()
            if related == "application/dicom":
                return media.transfer_syntax or EXPLICIT_LE
        elif media.type in ("application/dicom", "*/*", "multipart/*"):
            return media.transfer_syntax or EXPLICIT_LE
    raise NotAcceptable("instances are available as multipart/related; type=\"application/dicom\"")


def _instance_parts(archive: ArchiveGuard, found: list[StoredInstance],
                    transfer_syntax: str) -> Iterator[tuple[dict[str, str], Iterable[bytes]]]:
    for inst in found:
        if transfer_syntax == "*" or transfer_syntax == inst.transfer_syntax_uid:
            length, chunks = archive.stream(inst)
            yield ({"Content-Type": "application/dicom; transfer-syntax="
                    + inst.transfer_syntax_uid, "Content-Length": str(length)}, chunks)
            continue
        if transfer_syntax != EXPLICIT_LE:
            raise NotAcceptable(f"transcoding to {transfer_syntax} is not supported")
        data = dataset_to_bytes(to_explicit_vr_little_endian(archive.dataset(inst)))
        yield ({"Content-Type": f"application/dicom; transfer-syntax={EXPLICIT_LE}",
                "Content-Length": str(len(data))}, [data])


@guarded
async def retrieve_instances(request: Request) -> Response:
    study, series, instance = _ids(request)
    archive = service(request)
    archive.require("download")  # whole instances leave the archive: decided before streaming
    transfer_syntax = _dicom_transfer_syntax(request)
    if transfer_syntax not in ("*", EXPLICIT_LE) and transfer_syntax not in (
            MEDIA_TYPE_BY_TRANSFER_SYNTAX):
        raise NotAcceptable(f"unknown transfer syntax {transfer_syntax[:64]}")
    found = await blocking(archive.instances, study, series, instance)
    if transfer_syntax not in ("*", EXPLICIT_LE) and any(
            i.transfer_syntax_uid != transfer_syntax for i in found):
        raise NotAcceptable(f"transcoding to {transfer_syntax} is not supported")
    boundary = new_boundary()
    body = multipart_parts(_instance_parts(archive, found, transfer_syntax), boundary)
    media = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return StreamingResponse(threaded_stream(body), media_type=media)


@guarded
async def retrieve_metadata(request: Request) -> Response:
    accept = parse_accept(request.headers.get("accept"))
    if not any(matches(m, DICOM_JSON) or matches(m, "application/json") for m in accept):
        raise NotAcceptable("metadata is available as application/dicom+json")
    study, series, instance = _ids(request)
    texts = await blocking(service(request).metadata_texts, study, series, instance)
    body = resolve_markers("[" + ",".join(texts) + "]", request)
    return Response(body, media_type=DICOM_JSON)


def _parse_frame_list(text: str) -> list[int]:
    try:
        numbers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise InvalidInput("frame numbers must be positive integers") from exc
    if not numbers or len(numbers) > 10000:
        raise InvalidInput("frame list is empty or too long")
    return numbers


def _frame_media(accept: list[MediaRange], stored_ts: str) -> tuple[bool, str]:
    """(native?, media type) for frames: octet-stream, or the stored compressed type."""
    stored_media = MEDIA_TYPE_BY_TRANSFER_SYNTAX.get(stored_ts, "application/octet-stream")
    for media in accept:
        wanted = media.related_type if media.type == "multipart/related" else media.type
        wanted = (wanted or "application/octet-stream").lower()
        ts = media.transfer_syntax
        if wanted in ("application/octet-stream", "*/*") and ts in (None, EXPLICIT_LE, "*"):
            if ts == "*" or (wanted == "*/*" and media.type == "multipart/related"):
                return False, stored_media
            return True, "application/octet-stream"
        if wanted == stored_media and ts in (None, "*", stored_ts):
            return False, stored_media
    raise NotAcceptable(f"frames are available as application/octet-stream or {stored_media}")


@guarded
async def retrieve_frames(request: Request) -> Response:
    study, series, instance = _ids(request)
    assert series is not None and instance is not None
    numbers = _parse_frame_list(request.path_params["frames"])
    archive = service(request)
    (found,) = await blocking(archive.instances, study, series, instance)
    native, media_type = _frame_media(parse_accept(request.headers.get("accept")),
                                      found.transfer_syntax_uid)
    frames = await blocking(archive.frames, study, series, instance, numbers, native=native)
    boundary = new_boundary()
    base = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
    parts = []
    for number, frame in zip(numbers, frames, strict=True):
        content_type = (media_type if native
                        else f"{media_type}; transfer-syntax={frame.transfer_syntax_uid}")
        parts.append(({"Content-Type": content_type, "Content-Length": str(len(frame.data)),
                       "Content-Location": f"{base.rsplit('/', 1)[0]}/{number}"}, [frame.data]))
    body = b"".join(multipart_parts(parts, boundary))
    return Response(body, media_type=f'multipart/related; type="{media_type}"; boundary={boundary}')


@guarded
async def retrieve_bulkdata(request: Request) -> Response:
    study, series, instance = _ids(request)
    assert series is not None and instance is not None
    data = await blocking(service(request).bulkdata, study, series, instance,
                          request.path_params["tag"])
    boundary = new_boundary()
    body = b"".join(multipart_parts([({"Content-Type": "application/octet-stream"}, [data])],
                                    boundary))
    return Response(body, media_type=f'multipart/related; type="application/octet-stream"; '
                                     f"boundary={boundary}")


def _render_media(request: Request) -> str:
    for media in parse_accept(request.headers.get("accept")):
        for candidate in ("image/jpeg", "image/png", "image/gif"):
            if matches(media, candidate):
                return candidate
    raise NotAcceptable("rendered images are available as image/jpeg, image/png or image/gif")


def _viewport(request: Request) -> tuple[int, int] | None:
    text = request.query_params.get("viewport")
    if not text:
        return None
    parts = text.split(",")
    try:
        width, height = int(parts[0]), int(parts[1])
    except (ValueError, IndexError) as exc:
        raise InvalidInput("viewport must be vw,vh") from exc
    if not (0 < width <= 8192 and 0 < height <= 8192):
        raise InvalidInput("viewport dimensions must be between 1 and 8192")
    return width, height


def _window(request: Request) -> tuple[float, float, str] | None:
    text = request.query_params.get("window")
    if not text:
        return None
    parts = text.split(",")
    try:
        center, width = float(parts[0]), float(parts[1])
    except (ValueError, IndexError) as exc:
        raise InvalidInput("window must be center,width[,function]") from exc
    function = parts[2].strip().lower() if len(parts) > 2 else "linear"
    if function not in ("linear", "linear-exact", "sigmoid") or width <= 0:
        raise InvalidInput("invalid window")
    return center, width, function


def _quality(request: Request) -> int:
    text = request.query_params.get("quality", "90")
    try:
        quality = int(text)
    except ValueError as exc:
        raise InvalidInput("quality must be an integer 1..100") from exc
    if not 1 <= quality <= 100:
        raise InvalidInput("quality must be an integer 1..100")
    return quality


def _representative(archive: ArchiveGuard, study: str, series: str | None,
                    instance: str | None) -> StoredInstance:
    """The instance a study/series rendering shows: the middle image with pixels."""
    found = [i for i in archive.instances(study, series, instance) if i.number_of_frames]
    if not found:
        raise NotAcceptable("no renderable image in the requested resource")
    return found[len(found) // 2] if instance is None else found[0]


@guarded
async def retrieve_rendered(request: Request) -> Response:
    study, series, instance = _ids(request)
    archive = service(request)
    media_type = _render_media(request)
    window, viewport, quality = _window(request), _viewport(request), _quality(request)
    frame_text = request.path_params.get("frames")
    frame = _parse_frame_list(frame_text)[0] - 1 if frame_text else 0

    def work() -> bytes:
        inst = _representative(archive, study, series, instance)
        return render(archive.dataset(inst), frame, window=window, viewport=viewport,
                      media_type=media_type, quality=quality)

    return Response(await blocking(work), media_type=media_type)


@guarded
async def retrieve_thumbnail(request: Request) -> Response:
    study, series, instance = _ids(request)
    archive = service(request)
    media_type = _render_media(request)
    viewport = _viewport(request)
    size = max(viewport) if viewport else 128

    def work() -> bytes:
        inst = _representative(archive, study, series, instance)
        return thumbnail(archive.dataset(inst), size=size, media_type=media_type)

    return Response(await blocking(work), media_type=media_type)
