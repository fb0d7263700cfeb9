"""SMART on FHIR scopes: parse them, refuse unknown ones, and answer "does this grant allow that".

Resource scopes follow SMART App Launch v2 (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):
``(patient|user|system)/(Type|*).(c?r?u?d?s?)`` with the letters in that order, plus the v1
forms ``.read`` (= ``rs``), ``.write`` (= ``cud``) and ``.*`` (= ``cruds``). Granular scopes
with a query (``patient/Observation.rs?category=…``) are refused rather than silently widened.

Other scopes are the OpenID Connect and launch-context ones in :data:`SPECIAL_SCOPES`.

This module is pure (no I/O): the policy calls :func:`allows` on every decision.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from vesalius.core.errors import InvalidInput

CONTEXTS = ("patient", "user", "system")
#: SMART v2 interaction letters, in the order they must appear.
INTERACTIONS = "cruds"
#: Non-resource scopes we understand.
SPECIAL_SCOPES = frozenset({"openid", "fhirUser", "profile", "offline_access", "online_access",
                            "launch", "launch/patient"})
_V1 = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset(INTERACTIONS)}
_RESOURCE = re.compile(r"(patient|user|system)/(\*|[A-Z][A-Za-z]{0,63})\.([a-z*]{1,5})")
#: Guards against absurd requests (each scope is parsed and stored).
MAX_SCOPE_TEXT = 4096
MAX_SCOPES = 100


@dataclass(frozen=True)
class Scope:
    """One resource scope: who it is for, which resource type, which interactions."""

    context: str
    resource_type: str
    interactions: frozenset[str]

    def covers(self, other: Scope) -> bool:
        """Whether granting ``self`` grants everything ``other`` asks for."""
        return (self.context == other.context
                and self.resource_type in ("*", other.resource_type)
                and other.interactions <= self.interactions)

    def __str__(self) -> str:
        letters = "".join(c for c in INTERACTIONS if c in self.interactions)
        return f"{self.context}/{self.resource_type}.{letters}"


def parse_scope(text: str) -> Scope:
    """Parse a resource scope; ``InvalidInput`` for anything else (special scopes included)."""
    match = _RESOURCE.fullmatch(text)
    if match is None:
        raise InvalidInput(f"not a SMART resource scope: {text[:80]!r}")
    context, resource_type, tail = match.groups()
    if tail in _V1:
        return Scope(context, resource_type, _V1[tail])
    letters = [c for c in INTERACTIONS if c in tail]
    if "".join(letters) != tail:  # wrong order, repeated or unknown letters
        raise InvalidInput(f"not a SMART resource scope: {text[:80]!r}")
    return Scope(context, resource_type, frozenset(tail))


def is_resource_scope(text: str) -> bool:
    return "/" in text and text not in SPECIAL_SCOPES


def split_scopes(scopes: str | Iterable[str]) -> frozenset[str]:
    """Validate a space-separated scope string (or an iterable of scopes) and return the set.

    Raises ``InvalidInput`` for an unknown scope, so the token endpoint can answer
    ``invalid_scope`` (RFC 6749 §5.2) instead of granting less than the client believes.
    """
    items = scopes.split(" ") if isinstance(scopes, str) else list(scopes)
    if sum(len(item) + 1 for item in items) > MAX_SCOPE_TEXT or len(items) > MAX_SCOPES:
        raise InvalidInput("too many scopes requested")
    out: set[str] = set()
    for item in items:
        if not item:
            continue
        if item not in SPECIAL_SCOPES:
            parse_scope(item)
        out.add(item)
    return frozenset(out)


def granted(requested: Iterable[str], allowed: Iterable[str]) -> frozenset[str]:
    """The requested scopes a client registered for ``allowed`` may receive.

    A resource scope is kept when one allowed scope covers it whole (``user/*.cruds`` covers
    ``user/Observation.rs``); anything else requested is dropped, as RFC 6749 §3.3 lets an
    authorization server grant less than asked (the response then says what was granted).
    """
    allowed_set = frozenset(allowed)
    allowed_resources = [parse_scope(a) for a in allowed_set if a not in SPECIAL_SCOPES]
    out = set()
    for scope in requested:
        if scope in SPECIAL_SCOPES:
            if scope in allowed_set:
                out.add(scope)
        elif any(a.covers(parse_scope(scope)) for a in allowed_resources):
            out.add(scope)
    return frozenset(out)


def allows(scopes: Iterable[str], context: str | None, resource_type: str,
           interaction: str) -> bool:
    """Whether any of ``scopes`` allows ``interaction`` (one of ``c r u d s``) on
    ``resource_type``, for the given context (``patient``/``user``/``system``; None: any).

    Scopes that do not parse allow nothing (a stored token may predate a stricter parser).
    """
    for text in scopes:
        if text in SPECIAL_SCOPES:
            continue
        try:
            scope = parse_scope(text)
        except InvalidInput:
            continue
        if ((context is None or scope.context == context)
                and scope.resource_type in ("*", resource_type)
                and interaction in scope.interactions):
            return True
    return False
