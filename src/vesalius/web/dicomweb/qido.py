"""QIDO-RS search (PS3.18 §10.6)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vesalius.core.errors import InvalidInput
from vesalius.dicom.attributes import Level
from vesalius.dicom.json_model import dumps
from vesalius.web.dicomweb.common import (
    DICOM_JSON,
    Endpoint,
    blocking,
    guarded,
    resolve_markers,
    service,
)
from vesalius.web.dicomweb.negotiation import matches, parse_accept

_CONTROL = {"limit", "offset", "includefield", "fuzzymatching", "emptyvaluematching",
            "orderby", "charset"}


def _int_param(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise InvalidInput(f"{name} must be an integer") from exc


async def _search(request: Request, level: Level) -> Response:
    accept = parse_accept(request.headers.get("accept"))
    if not any(matches(m, DICOM_JSON) or matches(m, "application/json") for m in accept):
        return Response("QIDO-RS answers in application/dicom+json", status_code=406)
    params: list[tuple[str, str]] = []
    includefields: list[str] = []
    limit: int | None = None
    offset = 0
    fuzzy = False
    for name, value in request.query_params.multi_items():
        key = name.strip()
        lowered = key.lower()
        if lowered == "limit":
            limit = _int_param(value, "limit")
        elif lowered == "offset":
            offset = _int_param(value, "offset")
        elif lowered == "includefield":
            includefields.append(value)
        elif lowered == "fuzzymatching":
            fuzzy = value.strip().lower() == "true"
        elif lowered in _CONTROL:
            continue
        else:
            params.append((key, value))
    study_uid = request.path_params.get("study")
    series_uid = request.path_params.get("series")
    result = await blocking(
        service(request).search, level, params, includefields=includefields, fuzzy=fuzzy,
        limit=limit, offset=offset, study_uid=study_uid, series_uid=series_uid,
    )
    headers: dict[str, str] = {}
    warnings = []
    if result.has_more:
        warnings.append('299 vesalius "The number of results exceeded the maximum supported '
                        'by the server. Additional results can be requested."')
    if result.ignored:
        warnings.append('299 vesalius "The following query parameters are not supported: '
                        + ", ".join(result.ignored)[:500] + '"')
    if warnings:
        headers["Warning"] = ", ".join(warnings)
    body = resolve_markers(dumps(result.matches), request)
    return Response(body, media_type=DICOM_JSON, headers=headers)


def searcher(level: Level) -> Endpoint:
    """The QIDO-RS endpoint for one query level."""

    @guarded
    async def search(request: Request) -> Response:
        return await _search(request, level)

    search.__name__ = f"search_{level.value.lower()}"
    return search


search_studies = searcher(Level.STUDY)
search_series = searcher(Level.SERIES)
search_instances = searcher(Level.IMAGE)
search_patients = searcher(Level.PATIENT)
