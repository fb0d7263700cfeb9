"""WADO-URI at ``/wado`` (PS3.18 §9): one instance as DICOM or a rendered image."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vesalius.core.errors import InvalidInput, NotAcceptable
from vesalius.dicom.transcode import dataset_to_bytes, to_explicit_vr_little_endian
from vesalius.render.image import render
from vesalius.web.dicomweb.common import blocking, guarded, service


@guarded
async def wado_uri(request: Request) -> Response:
    q = request.query_params
    if q.get("requestType") != "WADO":
        raise InvalidInput("requestType must be WADO")
    study, series, sop = q.get("studyUID"), q.get("seriesUID"), q.get("objectUID")
    if not (study and series and sop):
        raise InvalidInput("studyUID, seriesUID and objectUID are required")
    content_type = (q.get("contentType") or "image/jpeg").split(",")[0].strip().lower()
    archive = service(request)
    (inst,) = await blocking(archive.instances, study, series, sop)
    if content_type == "application/dicom":
        transfer_syntax = q.get("transferSyntax")
        if transfer_syntax and transfer_syntax != inst.transfer_syntax_uid:
            if transfer_syntax != "1.2.840.10008.1.2.1":
                raise NotAcceptable("only Explicit VR Little Endian transcoding is supported")
            data = await blocking(lambda: dataset_to_bytes(
                to_explicit_vr_little_endian(archive.dataset(inst))))
        else:
            data = await blocking(archive.read_bytes, inst)
        return Response(data, media_type="application/dicom")
    if content_type not in ("image/jpeg", "image/png", "image/gif"):
        raise NotAcceptable("contentType must be application/dicom, image/jpeg, image/png "
                            "or image/gif")
    window = None
    if q.get("windowCenter") and q.get("windowWidth"):
        try:
            window = (float(q["windowCenter"]), float(q["windowWidth"]), "linear")
        except ValueError as exc:
            raise InvalidInput("windowCenter/windowWidth must be numbers") from exc
    viewport = None
    if q.get("columns") or q.get("rows"):
        try:
            viewport = (int(q.get("columns") or 8192), int(q.get("rows") or 8192))
        except ValueError as exc:
            raise InvalidInput("rows/columns must be integers") from exc
    try:
        frame = int(q.get("frameNumber", "1")) - 1
        quality = int(q.get("imageQuality", "90"))
    except ValueError as exc:
        raise InvalidInput("frameNumber/imageQuality must be integers") from exc
    data = await blocking(lambda: render(archive.dataset(inst), frame, window=window,
                                         viewport=viewport, media_type=content_type,
                                         quality=max(1, min(quality, 100))))
    return Response(data, media_type=content_type)
