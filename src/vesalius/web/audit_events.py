"""``GET /fhir/AuditEvent`` and ``GET /fhir/AuditEvent/{sequence}``: the audit trail for
auditors, as FHIR R4 AuditEvent resources (https://hl7.org/fhir/R4/auditevent.html) in the
shape of IHE BALP (``security.audit.audit_event``), each one's ``id`` its place in the chain.

Search answers a ``searchset`` Bundle (https://hl7.org/fhir/R4/bundle.html) in chain order,
filtered in SQL (``AuditStore.search``). Parameters, after the R4 AuditEvent search
parameters (https://hl7.org/fhir/R4/auditevent.html#search):

- ``date``: ``recorded``, with the ``ge``/``gt``/``le``/``lt`` prefixes or none (the whole
  period the value names), repeatable (all must hold);
- ``patient`` (``Patient/<id>`` or ``<id>``), ``agent`` (the requestor as the trail names it,
  ``user:alice``, ``ae:CT1``…), ``type``, ``subtype`` (codes, ``system|code`` accepted),
  ``outcome`` (``0``, ``4``, ``8``, ``12``);
- ``_count`` (default 50, at most 1000) and ``_offset`` (from the ``next`` link).

Anything else is a 400 OperationOutcome (https://hl7.org/fhir/R4/search.html#errors).
Only the ``audit.read`` function may read the trail (403 otherwise: the trail is not one
patient's record, so its existence is no secret), and every read is itself recorded as
"Audit Log Used" (DCM 110101, PS3.15 §A.5.3.2).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vesalius.core.errors import InvalidInput, NotFound, VesaliusError
from vesalius.node import Node
from vesalius.security.audit import audit_event
from vesalius.security.audit.chain import ChainedRecord
from vesalius.security.audit.model import EVENT_TYPES, OUTCOMES, SUBTYPES, AuditRecord
from vesalius.web.fhir.outcome import error_outcome
from vesalius.web.fhir.requests import server_root
from vesalius.web.fhir.responses import fhir_response
from vesalius.web.principal import principal_of, record_for

DEFAULT_COUNT, MAX_COUNT = 50, 1000
#: Deepest page a ``_offset`` may ask for; past it, narrow the search by date.
MAX_OFFSET = 10_000_000
AUDIT_LOG_USED = "110101"
PARAMETERS = frozenset({"date", "patient", "agent", "type", "subtype", "outcome", "_count",
                        "_offset"})
_DATE = re.compile(r"(?P<prefix>eq|ge|gt|le|lt)?(?P<value>[0-9]{4}(-[0-9]{2}(-[0-9]{2}"
                   r"(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?)")
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _stamp(moment: datetime) -> str:
    """``recorded`` as the store keeps it (``AuditRecord.columns``)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _period(value: str) -> tuple[datetime, datetime]:
    """First and last microsecond of the period a FHIR date/dateTime names (UTC if no zone)."""
    try:
        if len(value) == 4:
            first = datetime(int(value), 1, 1, tzinfo=UTC)
            following = first.replace(year=first.year + 1) if first.year < 9999 else None
        elif len(value) == 7:
            first = datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=UTC)
            following = (first.replace(year=first.year + 1, month=1) if first.month == 12
                         else first.replace(month=first.month + 1))
        elif len(value) == 10:
            first = datetime.fromisoformat(value).replace(tzinfo=UTC)
            following = first + timedelta(days=1)
        else:
            first = datetime.fromisoformat(value.replace("Z", "+00:00"))
            first = first if first.tzinfo else first.replace(tzinfo=UTC)
            clock = re.match(r"[0-9:.]*", value[11:])
            precision = clock.group() if clock else ""
            step = (timedelta(minutes=1) if len(precision) == 5
                    else timedelta(microseconds=1) if "." in precision else timedelta(seconds=1))
            following = first + step
    except (ValueError, OverflowError) as error:
        raise InvalidInput(f"date {value[:40]!r} is not a FHIR date or dateTime") from error
    last = (following - timedelta(microseconds=1) if following is not None
            else datetime.max.replace(tzinfo=UTC))
    return first, last


def _bounds(values: list[str]) -> tuple[str | None, str | None]:
    """The inclusive ``recorded`` range every ``date`` parameter allows."""
    low: datetime | None = None
    high: datetime | None = None
    for raw in values:
        match = _DATE.fullmatch(raw)
        if match is None:
            raise InvalidInput(f"date {raw[:40]!r} is not a FHIR date search value "
                               "(prefixes eq, ge, gt, le, lt)")
        first, last = _period(match["value"])
        prefix = match["prefix"] or "eq"
        lower = {"eq": first, "ge": first, "gt": last + timedelta(microseconds=1)}.get(prefix)
        upper = {"eq": last, "le": last, "lt": first - timedelta(microseconds=1)}.get(prefix)
        if lower is not None:
            low = lower if low is None else max(low, lower)
        if upper is not None:
            high = upper if high is None else min(high, upper)
    return (_stamp(low) if low else None, _stamp(high) if high else None)


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name, [])
    if len(values) > 1:
        raise InvalidInput(f"{name} may be given once")
    return values[0] if values else None


def _code(value: str | None, known: dict[str, Any], name: str) -> str | None:
    if value is None:
        return None
    code = value.rsplit("|", 1)[-1]
    if code not in known:
        raise InvalidInput(f"{name} {code[:40]!r} is not an audit event {name} code")
    return code


def _integer(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 12 or not (
            low <= int(value) <= high):
        raise InvalidInput(f"{name} is a whole number from {low} to {high}")
    return int(value)


def _criteria(request: Request) -> dict[str, Any]:
    params: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, []).append(value)
    unknown = set(params) - PARAMETERS
    if unknown:
        raise InvalidInput(f"unknown search parameter {sorted(unknown)[0][:40]!r}; AuditEvent "
                           f"supports {', '.join(sorted(PARAMETERS))}")
    since, until = _bounds(params.get("date", []))
    patient = _one(params, "patient")
    if patient is not None:
        bare = patient.removeprefix("Patient/")
        if not _FHIR_ID.fullmatch(bare):
            raise InvalidInput("patient is a Patient id or Patient/<id>")
        patient = f"Patient/{bare}"
    agent = _one(params, "agent")
    if agent is not None and (not agent or len(agent) > 256 or "\x00" in agent):
        raise InvalidInput("agent names one requestor (user:<id>, ae:<title>…)")
    outcome = _one(params, "outcome")
    if outcome is not None and (not outcome.isdigit() or int(outcome) not in OUTCOMES
                                or len(outcome) > 2):
        raise InvalidInput("outcome is one of 0, 4, 8, 12")
    return {"since": since, "until": until, "patient": patient, "who": agent,
            "type": _code(_one(params, "type"), EVENT_TYPES, "type"),
            "subtype": _code(_one(params, "subtype"), SUBTYPES, "subtype"),
            "outcome": int(outcome) if outcome is not None else None,
            "offset": _integer(_one(params, "_offset"), "_offset", 0, 0, MAX_OFFSET),
            "limit": _integer(_one(params, "_count"), "_count", DEFAULT_COUNT, 0, MAX_COUNT)}


def _resource(entry: ChainedRecord) -> dict[str, Any]:
    return audit_event(AuditRecord.from_columns(entry.columns), entry.sequence)


def _failure(request: Request, error: Exception) -> Response:
    status, body = error_outcome(error, not_supported_status=400)
    return fhir_response(request, body, status)


def _used(node: Node, request: Request, what: str, outcome: int = 0) -> None:
    node.auditor.record(principal_of(request), type=AUDIT_LOG_USED, action="R",
                        outcome=outcome, how="fhir", what=what)


async def search(request: Request) -> Response:
    node: Node = request.app.state.node
    try:
        record_for(request).require_function("audit.read")
        criteria = _criteria(request)
        limit = criteria.pop("limit")
        found = await run_in_threadpool(node.auditor.store.search, **criteria, limit=limit + 1)
    except VesaliusError as error:
        return _failure(request, error)
    await run_in_threadpool(_used, node, request, "AuditEvent")
    base = f"{server_root(request)}/fhir/AuditEvent"
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "_offset"]
    links = [{"relation": "self", "url": f"{base}?{urlencode(request.query_params.multi_items())}"
              if request.query_params else base}]
    if len(found) > limit:
        following = criteria["offset"] + limit
        links.append({"relation": "next",
                      "url": f"{base}?{urlencode([*query, ('_offset', str(following))])}"})
    bundle = {"resourceType": "Bundle", "type": "searchset", "link": links,
              "entry": [{"fullUrl": f"{base}/{entry.sequence}", "resource": _resource(entry),
                         "search": {"mode": "match"}} for entry in found[:limit]]}
    return fhir_response(request, bundle)


async def read(request: Request) -> Response:
    node: Node = request.app.state.node
    try:
        record_for(request).require_function("audit.read")
        raw = request.path_params["sequence"]
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            raise NotFound(f"AuditEvent/{raw[:40]} is not known")
        found = await run_in_threadpool(node.auditor.store.search, sequence=int(raw), limit=1)
        if not found:
            raise NotFound(f"AuditEvent/{raw} is not known")
    except VesaliusError as error:
        return _failure(request, error)
    await run_in_threadpool(_used, node, request, f"AuditEvent/{found[0].sequence}")
    return fhir_response(request, _resource(found[0]))


routes: list[BaseRoute] = [
    Route("/fhir/AuditEvent", search, methods=["GET"]),
    Route("/fhir/AuditEvent/{sequence}", read, methods=["GET"]),
]
