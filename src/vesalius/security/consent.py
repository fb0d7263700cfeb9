"""Whether a patient's FHIR R4 ``Consent`` resources allow a disclosure to a third party.

Pure functions over the resources as JSON (https://hl7.org/fhir/R4/consent.html): the
record service finds the patient's consents, the policy asks :func:`decide`, nothing here
reads or writes anything.

The rules, in the order they apply:

1. Only consents with ``status`` ``active`` whose ``scope`` is ``patient-privacy``
   (http://terminology.hl7.org/CodeSystem/consentscope), or that carry no scope coding, are
   read; research, treatment and advance-directive consents are not privacy rules.
2. A consent's root ``provision`` is its base rule; nested ``provision.provision`` elements
   are exceptions to their parent (https://hl7.org/fhir/R4/consent-definitions.html#Consent.provision.provision).
   A nested provision is only considered when its parent matched, and the most specific
   matching provision that states a ``type`` (``permit`` or ``deny``) decides. When two
   sibling exceptions both match and disagree, ``deny`` wins.
3. A provision matches when every criterion it carries matches: ``period`` contains the
   moment of the disclosure, any ``actor[].reference`` is the recipient or its
   organization, any ``purpose[]`` code is the disclosure's purpose of use, any ``class[]``
   code from http://hl7.org/fhir/resource-types is the resource type asked for, any
   ``data[].reference`` is the resource asked for, and any ``action[]`` is one a disclosure
   performs (``access``, ``use``, ``disclose``).
4. A criterion that cannot be checked — a security label, a code, a class from another
   system, an unreadable period, or a disclosure that does not say its purpose or names
   the whole record where the provision names one resource type — is read against the
   patient: it never lets a ``permit`` match and always lets a ``deny`` match. A consent
   only ever grants what it plainly grants.
5. A provision without ``type`` states no rule (R4 makes ``type`` optional, and several
   official examples omit it on the root): such a provision only passes matching on to its
   exceptions. A consent none of whose matching provisions states a type does not apply.
6. Of several applicable consents the newest ``dateTime`` wins (deny on a tie). When none
   applies, the installation's ``consent_default`` does: ``opt-in`` denies, ``opt-out``
   permits.

Input is read tolerantly: a malformed consent or provision is ignored, never an error.
Reasons are plain text that names no patient data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from vesalius.core.errors import InvalidInput

CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
#: ``Consent.provision.action`` codes (http://terminology.hl7.org/CodeSystem/consentaction)
#: that a disclosure to a third party performs.
DISCLOSURE_ACTIONS = frozenset({"access", "use", "disclose"})
DEFAULTS = ("opt-in", "opt-out")
PERMIT, DENY = "permit", "deny"

_DATE_TIME = re.compile(
    r"(?P<year>[0-9]{4})(-(?P<month>[0-9]{2})(-(?P<day>[0-9]{2})"
    r"(T(?P<time>[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?")


@dataclass(frozen=True)
class Disclosure:
    """What is about to be disclosed, and to whom."""

    #: The recipient and its organization: ``{"Practitioner/p1", "Organization/o2"}``.
    actor_references: frozenset[str]
    #: A v3 PurposeOfUse code (``TREAT``, ``HRESCH``, ``ETREAT``…), None when not stated.
    purpose: str | None
    #: The data class asked for (``ImagingStudy``, ``Observation``), None for the whole record.
    resource_type: str | None
    #: A specific resource (``Observation/x``) when known.
    resource_reference: str | None
    at: datetime


@dataclass(frozen=True)
class ConsentDecision:
    permitted: bool
    reason: str
    #: ``Consent/<id>`` of the consent that decided; None when the default decided.
    consent: str | None


def decide(consents: Iterable[Mapping[str, Any]], disclosure: Disclosure, *,
           default: str) -> ConsentDecision:
    """Whether the patient's ``consents`` permit ``disclosure`` (rules in the module doc)."""
    if default not in DEFAULTS:
        raise InvalidInput(f"consent default must be one of {', '.join(DEFAULTS)}")
    at = disclosure.at if disclosure.at.tzinfo else disclosure.at.replace(tzinfo=UTC)
    best: tuple[datetime, bool, str, str] | None = None  # (dateTime, is deny, type, id)
    for consent in consents:
        if not _counts(consent):
            continue
        decision = _provision_decision(consent.get("provision"), disclosure, at)
        if decision is None:
            continue
        written = _instant(consent.get("dateTime"), end=False) or datetime.min.replace(
            tzinfo=UTC)
        key = (written, decision == DENY, decision, _reference(consent))
        if best is None or key[:2] > best[:2]:
            best = key
    if best is None:
        permitted = default == "opt-out"
        return ConsentDecision(permitted, f"no applicable consent; the {default} default "
                                          f"{'permits' if permitted else 'denies'}", None)
    _, _, decision, reference = best
    return ConsentDecision(decision == PERMIT, f"the newest applicable consent "
                                               f"{'permits' if decision == PERMIT else 'denies'}"
                                               " this disclosure", reference)


def _reference(consent: Mapping[str, Any]) -> str:
    identifier = consent.get("id")
    return f"Consent/{identifier}" if isinstance(identifier, str) and identifier else "Consent"


def _counts(consent: object) -> bool:
    """An active privacy consent (rule 1)."""
    if not isinstance(consent, Mapping) or consent.get("status") != "active":
        return False
    if consent.get("resourceType", "Consent") != "Consent":
        return False
    scope = consent.get("scope")
    codings = scope.get("coding") if isinstance(scope, Mapping) else None
    if scope is None or not codings:
        return scope is None or isinstance(scope, Mapping)
    if not isinstance(codings, list):
        return False
    return any(isinstance(c, Mapping) and c.get("code") == "patient-privacy"
               and c.get("system", CONSENT_SCOPE) == CONSENT_SCOPE for c in codings)


def _provision_decision(provision: object, disclosure: Disclosure, at: datetime,
                        certain: bool = True, depth: int = 0) -> str | None:
    """The type of the most specific matching provision that states one (rules 2 and 5).

    ``certain``: every ancestor matched on criteria that could be checked. A ``permit``
    counts only on a certain path; a ``deny`` counts on an uncertain one too (rule 4).
    """
    if not isinstance(provision, Mapping) or depth > 32:
        return None
    matched = _matches(provision, disclosure, at)
    if matched is False:
        return None
    certain = certain and matched is True
    kind = provision.get("type")
    own = kind if kind == DENY or (kind == PERMIT and certain) else None
    nested = provision.get("provision")
    exceptions: set[str] = set()
    if isinstance(nested, list):
        for child in nested:
            found = _provision_decision(child, disclosure, at, certain, depth + 1)
            if found is not None:
                exceptions.add(found)
    if exceptions:
        return DENY if DENY in exceptions else PERMIT
    return own


def _matches(provision: Mapping[str, Any], disclosure: Disclosure, at: datetime
             ) -> bool | None:
    """False when a criterion rules the disclosure out; None when none does but one could
    not be checked; True when every present criterion matched."""
    certain = not any(name in provision for name in _UNCHECKABLE)
    for name, check in _CRITERIA.items():
        if name not in provision:
            continue
        result = check(provision[name], disclosure, at)
        if result is False:
            return False
        if result is None:
            certain = False
    return True if certain else None


def _codings(value: object) -> list[Mapping[str, Any]]:
    return [c for c in value if isinstance(c, Mapping)] if isinstance(value, list) else []


def _references(value: object) -> tuple[list[str], int]:
    """The literal references of ``actor[]``/``data[]`` entries, and how many entries there
    are (an entry without a literal reference cannot be checked)."""
    entries = _codings(value)
    literal: list[str] = []
    for entry in entries:
        reference = entry.get("reference")
        target = reference.get("reference") if isinstance(reference, Mapping) else None
        if isinstance(target, str):
            literal.append(target)
    return literal, len(entries)


def _period(value: object, _: Disclosure, at: datetime) -> bool | None:
    if not isinstance(value, Mapping):
        return None
    start, end = value.get("start"), value.get("end")
    low = _instant(start, end=False) if start is not None else datetime.min.replace(tzinfo=UTC)
    high = _instant(end, end=True) if end is not None else datetime.max.replace(tzinfo=UTC)
    if low is None or high is None:
        return None
    return low <= at <= high


def _actor(value: object, disclosure: Disclosure, _: datetime) -> bool | None:
    literal, listed = _references(value)
    if any(r in disclosure.actor_references for r in literal):
        return True
    return False if literal and len(literal) == listed else None


def _purpose(value: object, disclosure: Disclosure, _: datetime) -> bool | None:
    codes = {c.get("code") for c in _codings(value)}
    if disclosure.purpose is None or not codes:
        return None
    return disclosure.purpose in codes


def _class(value: object, disclosure: Disclosure, _: datetime) -> bool | None:
    codings = _codings(value)
    types = {c.get("code") for c in codings if c.get("system") == RESOURCE_TYPES}
    if disclosure.resource_type is not None and disclosure.resource_type in types:
        return True
    if disclosure.resource_type is None or len(types) < len(codings) or not codings:
        return None
    return False


def _data(value: object, disclosure: Disclosure, _: datetime) -> bool | None:
    literal, listed = _references(value)
    if disclosure.resource_reference is not None and disclosure.resource_reference in literal:
        return True
    if not literal or len(literal) < listed:
        return None
    if disclosure.resource_reference is not None:
        return False
    if disclosure.resource_type is not None and all(
            r.split("/", 1)[0] != disclosure.resource_type for r in literal):
        return False
    return None


def _action(value: object, _: Disclosure, __: datetime) -> bool | None:
    codes = {c.get("code") for concept in _codings(value)
             for c in _codings(concept.get("coding"))}
    if not codes:
        return None
    return bool(codes & DISCLOSURE_ACTIONS)


_CRITERIA = {"period": _period, "actor": _actor, "purpose": _purpose, "class": _class,
             "data": _data, "action": _action}
#: Criteria a disclosure carries nothing to check against.
_UNCHECKABLE = ("securityLabel", "code", "dataPeriod")


def _instant(value: object, *, end: bool) -> datetime | None:
    """A FHIR ``dateTime`` (year, year-month, date or date-time) as the first moment it
    names, or with ``end`` the last; a zone-less value is read as UTC. None if malformed."""
    if not isinstance(value, str):
        return None
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return None
    try:
        year = int(match["year"])
        if match["time"]:
            moment = datetime.fromisoformat(f"{value[:10]}T{match['time']}")
            zone = match["zone"]
            if zone and zone != "Z":
                sign = 1 if zone[0] == "+" else -1
                offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])) * sign
                moment -= offset
            moment = moment.replace(tzinfo=UTC)
            if end and len(match["time"]) == 5:  # hh:mm names the whole minute
                return moment + timedelta(minutes=1, microseconds=-1)
            return moment
        if match["day"]:
            first = datetime(year, int(match["month"]), int(match["day"]), tzinfo=UTC)
            following = first + timedelta(days=1)
        elif match["month"]:
            first = datetime(year, int(match["month"]), 1, tzinfo=UTC)
            following = (datetime(year + 1, 1, 1, tzinfo=UTC) if first.month == 12
                         else datetime(year, first.month + 1, 1, tzinfo=UTC))
        else:
            first = datetime(year, 1, 1, tzinfo=UTC)
            following = datetime(year + 1, 1, 1, tzinfo=UTC) if year < 9999 else datetime.max
            following = following.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
    return following - timedelta(microseconds=1) if end else first
