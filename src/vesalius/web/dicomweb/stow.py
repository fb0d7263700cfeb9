"""STOW-RS (PS3.18 §10.5): streamed multipart upload, per-instance outcome.

Each part is spooled to a temporary file with bounded memory, then stored
while the next part is still arriving; the response lists every instance
as referenced (stored) or failed with a PS3.18 failure reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from vesalius.archive.service import ArchiveService, StoreOutcome, StoreStatus
from vesalius.core.errors import (
    DoesNotMatchRequest,
    InvalidInput,
    TooLarge,
    VesaliusError,
)
from vesalius.core.uids import require_uid
from vesalius.dicom import status as st
from vesalius.dicom.json_model import BULK_BASE_MARKER, dumps
from vesalius.dicom.status import store_status
from vesalius.web.dicomweb.common import DICOM_JSON, blocking, guarded, resolve_markers, service
from vesalius.web.problems import problem

log = logging.getLogger(__name__)

#: Our failure reason for an instance STOWed to another study's URL (PS3.18 leaves
#: the code to the origin server within the 0xC000 range).
STUDY_UID_MISMATCH = 0xC409


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    handle: Any = None
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    too_large: bool = False


@dataclass
class _Outcome:
    stored: list[StoreOutcome] = field(default_factory=list)
    failed: list[tuple[int, str, str | None, str | None]] = field(default_factory=list)


def _reason_for(error: VesaliusError) -> int:
    if isinstance(error, DoesNotMatchRequest):
        return STUDY_UID_MISMATCH
    return store_status(error)


def _peek_uids(path: Path) -> tuple[str | None, str | None]:
    """Best-effort SOP class/instance UIDs of a rejected part, for the failure list."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[
            "SOPClassUID", "SOPInstanceUID"])
        return str(ds.get("SOPClassUID", "")) or None, str(ds.get("SOPInstanceUID", "")) or None
    except Exception:
        return None, None


def _store_part(archive: ArchiveService, part: _Part, expected_study: str | None,
                outcome: _Outcome) -> None:
    assert part.path is not None
    try:
        content_type = part.headers.get("content-type", "application/dicom")
        media, _ = parse_options_header(content_type)
        if media.decode("latin-1").lower() != "application/dicom":
            raise InvalidInput(f"part has unsupported content type {content_type[:80]}")
        if part.too_large:
            raise TooLarge("instance exceeds the configured maximum size")
        outcome.stored.append(archive.store_file(
            part.path, expected_study_uid=expected_study, sha256=part.digest.hexdigest(),
            owned=True))
    except VesaliusError as error:
        sop_class, sop_uid = _peek_uids(part.path) if not part.too_large else (None, None)
        outcome.failed.append((_reason_for(error), error.message, sop_class, sop_uid))
    except Exception:
        log.exception("unexpected failure storing a STOW-RS part")
        outcome.failed.append((st.PROCESSING_FAILURE, "internal processing failure", None,
                               None))
    finally:
        part.path.unlink(missing_ok=True)


def _response_body(outcome: _Outcome, request: Request, study: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if study is not None:
        body["00081190"] = {"vr": "UR", "Value": [f"{BULK_BASE_MARKER}studies/{study}"]}
    if outcome.stored:
        items = []
        for s in outcome.stored:
            item: dict[str, Any] = {
                "00081150": {"vr": "UI", "Value": [s.sop_class_uid]},
                "00081155": {"vr": "UI", "Value": [s.sop_uid]},
                "00081190": {"vr": "UR", "Value": [
                    f"{BULK_BASE_MARKER}studies/{s.study_uid}/series/{s.series_uid}"
                    f"/instances/{s.sop_uid}"]},
            }
            if s.status is StoreStatus.REPLACED:
                item["00081196"] = {"vr": "US", "Value": [0xB300]}
            items.append(item)
        body["00081199"] = {"vr": "SQ", "Value": items}
    if outcome.failed:
        failed = []
        for reason, message, sop_class, sop_uid in outcome.failed:
            item = {"00081197": {"vr": "US", "Value": [reason]},
                    # Error Comment, as dcm4chee does, so a person can read why.
                    "00000902": {"vr": "LO", "Value": [message[:64]]}}
            item["00081150"] = {"vr": "UI", "Value": [sop_class]} if sop_class else {"vr": "UI"}
            item["00081155"] = {"vr": "UI", "Value": [sop_uid]} if sop_uid else {"vr": "UI"}
            failed.append(item)
        body["00081198"] = {"vr": "SQ", "Value": failed}
    return body


@guarded
async def store_instances(request: Request) -> Response:
    archive = service(request)
    archive.require("upload")  # before reading the body: 403, not a per-instance failure
    study = request.path_params.get("study")
    if study is not None:
        require_uid(study, "study UID in the path")
    content_type = request.headers.get("content-type", "")
    media, options = parse_options_header(content_type)
    related = options.get(b"type", b"").decode("latin-1").lower()
    if media.decode("latin-1").lower() != "multipart/related" or related not in (
            "application/dicom", ""):
        return problem(415, 'STOW-RS accepts multipart/related; type="application/dicom"',
                       code="unsupported-media-type")
    boundary = options.get(b"boundary")
    if not boundary or len(boundary) > 200:
        return problem(400, "multipart body without a valid boundary", code="invalid")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > archive.settings.max_request_bytes:
        return problem(413, "request body exceeds the configured maximum", code="too-large")

    tmp_dir = archive.settings.data_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    limit = archive.settings.max_instance_bytes
    outcome = _Outcome()
    finished: list[_Part] = []
    current: list[_Part] = []
    header_name = bytearray()
    header_value = bytearray()
    ended = [False]
    parts_seen = [0]

    def on_part_begin() -> None:
        current.append(_Part())
        parts_seen[0] += 1

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        current[-1].headers[header_name.decode("latin-1").strip().lower()] = (
            header_value.decode("latin-1").strip())
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="stow-")
        part = current[-1]
        part.path = Path(name)
        part.handle = os.fdopen(fd, "wb")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = current[-1]
        part.size += end - start
        if part.size > limit:
            part.too_large = True
            return
        chunk = data[start:end]
        part.digest.update(chunk)
        part.handle.write(chunk)

    def on_part_end() -> None:
        part = current.pop()
        if part.handle is not None:
            part.handle.close()
            finished.append(part)

    def on_end() -> None:
        ended[0] = True

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data,
        "on_part_end": on_part_end, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_end": on_end,
    }, max_header_count=32)
    received = 0
    # (HTTP status, reason) of a body that could not be read to its end.
    error: tuple[int, str] | None = None
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > archive.settings.max_request_bytes:
                error = (413, "request body exceeds the configured maximum")
                break
            parser.write(chunk)
            while finished:
                await blocking(_store_part, archive, finished.pop(0), study, outcome)
        if error is None:
            parser.finalize()
            while finished:
                await blocking(_store_part, archive, finished.pop(0), study, outcome)
    except (MultipartParseError, ValueError) as exc:
        error = (400, f"malformed multipart body: {exc}"[:300])
    except ClientDisconnect:
        error = (400, "client disconnected before the body was complete")
    finally:
        for part in finished + current:
            if part.handle is not None:
                with contextlib.suppress(OSError):
                    part.handle.close()
            if part.path is not None:
                part.path.unlink(missing_ok=True)
    if error is None and not parts_seen[0]:
        error = (400, "multipart body contains no parts")
    if error is None and not ended[0]:
        error = (400, "body ended before the closing boundary" if outcome.stored
                 or outcome.failed else "multipart body has no closing boundary or no parts")
    if error is not None:
        status, message = error
        if not outcome.stored and not outcome.failed:
            return problem(status, message, code="too-large" if status == 413 else "invalid")
        # Parts before the breakdown were processed: the rest of the body is reported as
        # failed, so that the response never claims the whole request succeeded.
        outcome.failed.append((st.OUT_OF_RESOURCES if status == 413 else st.CANNOT_UNDERSTAND,
                               message, None, None))
    body = resolve_markers(dumps(_response_body(outcome, request, study)), request)
    if not outcome.failed:
        status = 200
    elif outcome.stored:
        status = 202
    else:
        status = 409
    return Response(body, status_code=status, media_type=DICOM_JSON)
