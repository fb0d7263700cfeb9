"""Narrative XHTML safety: the web app shows ``text.div``, so active content is refused here.

The rules are those of https://hl7.org/fhir/R4/narrative.html#xhtml and the security notes at
https://hl7.org/fhir/R4/narrative.html#security: a ``div`` in the XHTML namespace, no scripts,
forms, frames, objects, ``base``/``link``/xlink, no event attributes and no script URLs. The text
is parsed (so character references such as ``jav&#x61;script:`` are decoded before the checks)
and, because parsers and browsers disagree at the margins, the raw text is checked as well.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

XHTML_NAMESPACE = "http://www.w3.org/1999/xhtml"

#: Elements a narrative may not hold: active content or content that changes the page around it.
FORBIDDEN_ELEMENTS = frozenset({
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input",
    "button", "select", "textarea", "base", "link", "meta", "head", "body", "html", "style",
    "svg", "math"})

# Constructs XML reads as text but an HTML parser may not (``<?x > <img onerror=…> ?>``), and
# markup that declares entities; narratives never need them.
_RAW_FORBIDDEN = ("<?", "<![cdata[", "<!doctype", "<!entity", "javascript:", "vbscript:")
_RAW_ELEMENT = re.compile(
    r"<\s*/?\s*(?:[\w.-]+:)?(" + "|".join(sorted(FORBIDDEN_ELEMENTS)) + r")(?![\w.:-])")
# An event attribute inside a tag (between its ``<`` and the next ``<`` or ``>``).
_RAW_EVENT = re.compile(r"<[^<>]*[\s\"'/](on[a-z]+)\s*=")

_SCRIPT_URL = re.compile(r"^\s*(?:(?:java|vb)script|data)\s*:", re.IGNORECASE)
# Browsers ignore ASCII control characters and whitespace inside a URL scheme.
_URL_NOISE = re.compile(r"[\x00-\x20]")


def narrative_problems(div: str) -> list[str]:
    """What is wrong with one ``Narrative.div`` (empty when it is a safe XHTML ``div``)."""
    if not div.lstrip().startswith("<div"):
        return ["narrative must be an XHTML <div> element"]
    raw = _raw_problem(div.lower())
    if raw is not None:
        return [raw]
    try:
        root = ElementTree.fromstring(div)
    except ElementTree.ParseError as exc:
        return [f"narrative is not well-formed XHTML: {exc}"]
    if root.tag != f"{{{XHTML_NAMESPACE}}}div":
        return [f"narrative must be a <div> in the XHTML namespace {XHTML_NAMESPACE}"]
    problems: list[str] = []
    for node in root.iter():
        name = _local(node.tag) if isinstance(node.tag, str) else ""
        if name.lower() in FORBIDDEN_ELEMENTS:
            problems.append(f"narrative must not contain <{name}>")
        for attribute, value in node.attrib.items():
            local = _local(attribute).lower()
            if local.startswith("on"):
                problems.append(f"narrative must not contain event attribute {local!r}")
            elif attribute.startswith("{http://www.w3.org/1999/xlink}"):
                problems.append("narrative must not contain xlink attributes")
            elif _SCRIPT_URL.match(_URL_NOISE.sub("", value)) and not _is_image(name, value):
                problems.append(f"narrative must not contain a script URL in {local!r}")
    return problems


def _raw_problem(lower: str) -> str | None:
    """Checks on the unparsed text, in case a browser parses it otherwise than XML does."""
    for token in _RAW_FORBIDDEN:
        if token in lower:
            return f"narrative must not contain {token!r}"
    element = _RAW_ELEMENT.search(lower)
    if element is not None:
        return f"narrative must not contain <{element.group(1)}>"
    event = _RAW_EVENT.search(lower)
    if event is not None:
        return f"narrative must not contain event attribute {event.group(1)!r}"
    return None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _is_image(element: str, value: str) -> bool:
    """Inline images (``<img src="data:image/png;base64,…">``) are allowed by the spec."""
    return element == "img" and _URL_NOISE.sub("", value).lower().startswith("data:image/")
