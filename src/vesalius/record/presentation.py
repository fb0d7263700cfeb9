"""Bundles that present search results, histories and ``$everything`` pages; ``_summary`` and
``_elements`` views of a resource. Protocol-neutral: the REST edge and batch GET entries share it.

https://hl7.org/fhir/R4/bundle.html, https://hl7.org/fhir/R4/search.html#summary,
https://hl7.org/fhir/R4/http.html#history
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from vesalius.record.definitions import Definitions, ElementDefinition
from vesalius.record.history import HistoryPage
from vesalius.record.search.engine import SearchResult
from vesalius.record.unit_of_work import instant

#: Marks a resource that is not complete (https://hl7.org/fhir/R4/search.html#summary).
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED", "display": "subsetted"}
#: Present in every view of a resource.
ALWAYS = ("resourceType", "id", "meta")
#: Status text of a history entry's ``response`` by the interaction that wrote the version.
HISTORY_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK",
                  "DELETE": "204 No Content"}


def page_links(url: str, params: Sequence[tuple[str, str]], *, count: int, offset: int,
               next_offset: int | None, previous_offset: int | None) -> list[dict[str, str]]:
    """self/next/previous links: the applied parameters plus ``_count`` and ``_offset``."""
    def link(relation: str, at: int) -> dict[str, str]:
        query = [*params, ("_count", str(count))] + ([("_offset", str(at))] if at else [])
        return {"relation": relation, "url": f"{url}?{urlencode(query)}"}

    links = [link("self", offset)]
    if next_offset is not None:
        links.append(link("next", next_offset))
    if previous_offset is not None:
        links.append(link("previous", previous_offset))
    return links


def _type_url(base: str, resource_type: str | None) -> str:
    return f"{base}/{resource_type}" if resource_type else base


def searchset(result: SearchResult, *, base: str, resource_type: str | None,
              defs: Definitions) -> dict[str, Any]:
    """A searchset Bundle (https://hl7.org/fhir/R4/search.html#bundle): matches, then
    ``_include``/``_revinclude`` results, each in the ``_summary``/``_elements`` view asked."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    bundle["link"] = page_links(_type_url(base, resource_type), result.params,
                                count=result.count, offset=result.offset,
                                next_offset=result.next_offset,
                                previous_offset=result.previous_offset)
    if result.summary == "count":
        return bundle
    entries = [_entry(base, summarize(r, result.summary, result.elements, defs), "match")
               for r in result.matches]
    entries += [_entry(base, summarize(r, result.summary, result.elements, defs), "include")
                for r in result.included]
    if entries:
        bundle["entry"] = entries
    return bundle


def everything_bundle(resources: Sequence[dict[str, Any]], total: int, *, base: str,
                      patient_id: str, count: int, offset: int,
                      params: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """One page of ``Patient/$everything`` as a searchset
    (https://hl7.org/fhir/R4/patient-operation-everything.html)."""
    following = offset + count
    bundle: dict[str, Any] = {
        "resourceType": "Bundle", "type": "searchset", "total": total,
        "link": page_links(f"{base}/Patient/{patient_id}/$everything", params, count=count,
                           offset=offset,
                           next_offset=following if count and following < total else None,
                           previous_offset=max(0, offset - count)
                           if offset and count else None)}
    if resources:
        bundle["entry"] = [_entry(base, r, "match") for r in resources]
    return bundle


def history_bundle(page: HistoryPage, *, base: str, path: str,
                   params: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """A history Bundle, newest first (https://hl7.org/fhir/R4/http.html#history).

    ``path`` is the history's address below ``base`` (``Patient/1/_history``, ``_history``);
    ``params`` (``_since``) are repeated in the paging links. A deletion has no resource.
    """
    entries = []
    for item in page.entries:
        local = f"{item.resource_type}/{item.id}"
        entry: dict[str, Any] = {"fullUrl": f"{base}/{local}"}
        if item.resource is not None:
            entry["resource"] = item.resource
        entry["request"] = {"method": item.method,
                            "url": item.resource_type if item.method == "POST" else local}
        status = "201 Created" if item.version == 1 and item.method != "DELETE" \
            else HISTORY_STATUS.get(item.method, "200 OK")
        entry["response"] = {"status": status, "etag": f'W/"{item.version}"',
                             "lastModified": instant(item.last_updated)}
        entries.append(entry)
    previous = max(0, page.offset - page.count) if page.offset and page.count else None
    bundle: dict[str, Any] = {
        "resourceType": "Bundle", "type": "history", "total": page.total,
        "link": page_links(f"{base}/{path}" if path else base, params, count=page.count,
                           offset=page.offset, next_offset=page.next_offset,
                           previous_offset=previous)}
    if entries:
        bundle["entry"] = entries
    return bundle


def _entry(base: str, resource: dict[str, Any], mode: str) -> dict[str, Any]:
    return {"fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
            "resource": resource, "search": {"mode": mode}}


def summarize(resource: dict[str, Any], summary: str | None, elements: Sequence[str] | None,
              defs: Definitions) -> dict[str, Any]:
    """The ``_summary`` or ``_elements`` view of a resource, tagged SUBSETTED when anything
    may be missing (https://hl7.org/fhir/R4/search.html#summary,
    https://hl7.org/fhir/R4/search.html#elements). ``_summary`` wins over ``_elements``."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not defs.is_resource(resource_type):
        return resource
    definitions = defs.elements(resource_type)
    if summary == "true":
        view = _summary_view(resource, resource_type, definitions, top=True)
    elif summary == "text":
        view = {k: v for k, v in resource.items()
                if k in (*ALWAYS, "text") or _mandatory(definitions, resource_type, k)}
    elif summary == "data":
        view = {k: v for k, v in resource.items() if k != "text"}
    elif elements and summary in (None, "false"):
        wanted = {e.split(".", 1)[1] if e.startswith(f"{resource_type}.") else e
                  for e in elements}
        view = {k: v for k, v in resource.items()
                if k in ALWAYS or k in wanted or _mandatory(definitions, resource_type, k)}
    else:
        return resource
    return _tagged(view)


def _tagged(view: dict[str, Any]) -> dict[str, Any]:
    meta = dict(view.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if not (isinstance(t, dict)
                                                    and t.get("code") == "SUBSETTED")]
    meta["tag"] = [*tags, SUBSETTED]
    head: dict[str, Any] = {k: view[k] for k in ("resourceType", "id") if k in view}
    return {**head, "meta": meta,
            **{k: v for k, v in view.items() if k not in head and k != "meta"}}


def _definition(definitions: dict[str, ElementDefinition], path: str,
                key: str) -> ElementDefinition | None:
    """The element a JSON property names; choice elements (``value[x]``) by their prefix."""
    name = key[1:] if key.startswith("_") else key
    found = definitions.get(f"{path}.{name}")
    if found is not None:
        return found
    for candidate, definition in definitions.items():
        if candidate.endswith("[x]") and candidate.startswith(f"{path}."):
            stem = candidate[len(path) + 1:-3]
            if name.startswith(stem) and name[len(stem):len(stem) + 1].isupper():
                return definition
    return None


def _mandatory(definitions: dict[str, ElementDefinition], path: str, key: str) -> bool:
    definition = _definition(definitions, path, key)
    return definition is not None and definition.min > 0


def _summary_view(node: dict[str, Any], path: str,
                  definitions: dict[str, ElementDefinition], *, top: bool) -> dict[str, Any]:
    """Elements marked isSummary, descending into the resource's own backbone elements."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if top and key in ALWAYS:
            out[key] = value
            continue
        definition = _definition(definitions, path, key)
        if definition is None or not (definition.summary or definition.min > 0):
            continue
        child = definition.path
        if any(p.startswith(f"{child}.") for p in definitions) and not definition.path.endswith(
                "[x]"):
            out[key] = [_summary_view(v, child, definitions, top=False)
                        if isinstance(v, dict) else v for v in value] \
                if isinstance(value, list) else (
                _summary_view(value, child, definitions, top=False)
                if isinstance(value, dict) else value)
        else:
            out[key] = value
    return out
