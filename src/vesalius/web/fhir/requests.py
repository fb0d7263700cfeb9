"""Reading FHIR requests: bounded bodies, strict JSON, media types, ``Prefer``, the base URL.

https://hl7.org/fhir/R4/http.html#mime-type, https://hl7.org/fhir/R4/http.html#ops
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from vesalius.config import Settings
from vesalius.core.errors import (
    InvalidInput,
    NotAcceptable,
    NotFound,
    NotSupported,
    TooLarge,
    UnsupportedMediaType,
)
from vesalius.guard import RecordGuard
from vesalius.record.definitions import Definitions

#: Where the FHIR API is mounted under the server's base URL.
MOUNT = "/fhir"
#: Deeper JSON is refused before anything recursive (the parser, the validator) sees it.
MAX_DEPTH = 64
#: Largest ``_count``/``_offset`` (a 32-bit integer, as in every SQL backend).
MAX_INT = 2**31 - 1
ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
PATCH_TYPE = "application/json-patch+json"
FORM_TYPE = "application/x-www-form-urlencoded"
#: ``_format`` values meaning JSON (https://hl7.org/fhir/R4/http.html#mime-type).
JSON_FORMATS = ("json", *JSON_TYPES)
#: Parameters about the response, not the search (https://hl7.org/fhir/R4/http.html#parameters).
RESPONSE_PARAMS = ("_format", "_pretty")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def record(request: Request) -> RecordGuard:
    """The record as this request's caller may use it."""
    from vesalius.web.principal import record_for

    return record_for(request)


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def server_root(request: Request) -> str:
    """Where clients reach this server: ``public_base_url`` when configured, else what the
    caller used to reach us (scheme and Host)."""
    settings = settings_of(request)
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    host = request.headers.get("host") or f"{settings.host}:{settings.http_port}"
    return f"{request.url.scheme}://{host}"


def base_url(request: Request) -> str:
    """The FHIR base clients use (links, fullUrls, Location)."""
    return server_root(request) + MOUNT


def resource_type(request: Request, defs: Definitions) -> str:
    """The ``{type}`` path parameter; an unknown type is 404 (as HAPI FHIR answers)."""
    name = str(request.path_params["type"])
    _not_an_operation(name)
    if not defs.is_resource(name):
        raise NotFound(f"unknown resource type {name!r}")
    return name


def resource_id(request: Request, key: str = "id") -> str:
    value = str(request.path_params[key])
    _not_an_operation(value)
    if not ID.match(value):
        raise InvalidInput(f"{value!r} is not a valid id (https://hl7.org/fhir/R4/datatypes.html#id)")
    return value


def _not_an_operation(segment: str) -> None:
    if segment.startswith("$"):
        raise NotSupported(f"the operation {segment} is not supported here")


def query_params(request: Request) -> list[tuple[str, str]]:
    """The query string's parameters, without those that shape the response only."""
    return [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True)
            if k not in RESPONSE_PARAMS]


def check_accept(request: Request) -> None:
    """406 unless the caller can take JSON (``_format`` overrides ``Accept``)."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        if fmt.split(";")[0].strip().lower() not in JSON_FORMATS:
            raise NotAcceptable(f"_format {fmt!r} is not supported: this server speaks JSON only")
        return
    accept = request.headers.get("accept", "").lower()
    if not accept.strip():
        return
    ranges = [part.split(";")[0].strip() for part in accept.split(",")]
    if not any(r in (*JSON_TYPES, "*/*", "application/*") for r in ranges):
        raise NotAcceptable(f"cannot answer in {accept!r}: this server speaks JSON only")


def response_media_type(request: Request) -> str:
    """``application/json`` for callers that ask for exactly that, else FHIR's own type."""
    fmt = (request.query_params.get("_format") or "").lower()
    accept = request.headers.get("accept", "").lower()
    if fmt == "application/json" or (not fmt and "application/json" in accept
                                     and "application/fhir+json" not in accept):
        return "application/json"
    return "application/fhir+json"


def pretty(request: Request) -> bool:
    return request.query_params.get("_pretty", "").lower() == "true"


def prefer(request: Request) -> dict[str, str]:
    """``Prefer: return=minimal, handling=strict`` → {"return": "minimal", "handling": …}."""
    out: dict[str, str] = {}
    for header in request.headers.getlist("prefer"):
        for token in header.split(","):
            key, _, value = token.strip().partition("=")
            if key:
                out[key.strip().lower()] = value.strip().strip('"')
    return out


def strict_handling(request: Request) -> bool:
    """``Prefer: handling=strict`` (https://hl7.org/fhir/R4/search.html#errors)."""
    return prefer(request).get("handling") == "strict"


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused (413) once it passes ``limit`` bytes, before it is all read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body ({declared} bytes) exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request) -> Any:
    """The parsed JSON body; 415 for other media types (none given is read as JSON)."""
    kind = media_type(request)
    if kind and kind not in JSON_TYPES:
        raise UnsupportedMediaType(f"{kind!r} is not accepted: send application/fhir+json")
    return parse_json(await read_body(request, settings_of(request).fhir_max_request_bytes))


async def patch_body(request: Request) -> Any:
    """A JSON Patch document; FHIRPath Patch and XML Patch are not supported (415)."""
    kind = media_type(request)
    if kind != PATCH_TYPE:
        raise UnsupportedMediaType(f"PATCH takes {PATCH_TYPE}, not {kind or 'no type'!r}")
    return parse_json(await read_body(request, settings_of(request).fhir_max_request_bytes))


async def form_body(request: Request) -> list[tuple[str, str]]:
    """``POST _search`` parameters (https://hl7.org/fhir/R4/http.html#search)."""
    kind = media_type(request)
    if kind and kind != FORM_TYPE:
        raise UnsupportedMediaType(f"_search takes {FORM_TYPE}, not {kind!r}")
    body = await read_body(request, settings_of(request).fhir_max_request_bytes)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the form body is not UTF-8") from exc
    return [(k, v) for k, v in parse_qsl(text, keep_blank_values=True)
            if k not in RESPONSE_PARAMS]


def _reject_constant(name: str) -> Any:
    raise InvalidInput(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidInput(f"the number {text[:40]} is out of range")
    return value


def parse_json(body: bytes) -> Any:
    """Strict JSON (RFC 8259): UTF-8, no NaN/Infinity, finite numbers, depth ≤ 64, no NUL or
    unpaired surrogates in strings (no database can store them)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the body is not UTF-8 (byte {exc.start})") from exc
    check_depth(text)
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON at line {exc.lineno}, column {exc.colno} "
                           f"(character {exc.pos}): {exc.msg}") from exc
    except ValueError as exc:  # integers past Python's digit limit
        raise InvalidInput(f"a number in the body is out of range: {exc}") from exc
    _check_strings(value)
    return value


def check_depth(text: str) -> None:
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise InvalidInput(f"the JSON is nested deeper than {MAX_DEPTH} levels")
        else:
            depth -= 1


def _check_strings(value: Any) -> None:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, item in node.items():
                _check_string(key)
                stack.append(item)
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            _check_string(node)


def _check_string(text: str) -> None:
    if "\x00" in text:
        raise InvalidInput("strings may not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput("strings may not contain unpaired surrogates") from exc


def parse_instant(name: str, value: str) -> datetime:
    """``_since`` and similar: a FHIR instant (a date or dateTime is taken as UTC)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{name}={value!r} is not an instant") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_count(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) > MAX_INT:
        raise InvalidInput(f"{name}={value!r} is not an integer from 0 to {MAX_INT}")
    return int(value)
