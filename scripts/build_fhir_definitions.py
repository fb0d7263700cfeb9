"""Compile the official FHIR R4 (4.0.1) definitions into the compact file Vesalius ships.

Source: the npm package ``hl7.fhir.r4.examples@4.0.1`` (HL7 FHIR, CC0), which holds
``Bundle-resources.json`` / ``Bundle-types.json`` (StructureDefinitions with snapshots),
``Bundle-searchParams.json`` (1,375 SearchParameters), ``Bundle-valuesets.json`` /
``Bundle-v3-valuesets.json`` (ValueSets and CodeSystems) and ``CompartmentDefinition-patient.json``.

Output: ``src/vesalius/record/definitions/r4.json.gz`` — element definitions (path, cardinality,
types, reference targets, required bindings), primitive regexes, the codes of every
required-binding value set that can be expanded from the package, search parameters split per
resource type (FHIRPath expression parts, ``resolve() is X`` filters lifted out) and the Patient
compartment. The runtime reads only that file: nothing is downloaded.

Usage::

    npm install --prefix /tmp/fhir hl7.fhir.r4.examples@4.0.1
    python scripts/build_fhir_definitions.py /tmp/fhir/node_modules/hl7.fhir.r4.examples
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "src/vesalius/record/definitions/r4.json.gz"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
RESOLVE = re.compile(r"^(?P<path>.+)\.where\(resolve\(\) is (?P<type>[A-Za-z]+)\)$")


def _bundle(folder: Path, name: str) -> list[dict[str, Any]]:
    with open(folder / name, encoding="utf-8") as f:
        return [e["resource"] for e in json.load(f)["entry"]]


def _type_code(t: dict[str, Any]) -> str:
    code: str = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        # the .value of primitives, and Element.id / Extension.url
        for ext in t.get("extension", []):
            if ext["url"] == FHIR_TYPE_EXT:
                return str(ext["valueUrl"])
        return "string"
    return code


def _element(e: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"min": e.get("min", 0), "max": e.get("max", "*")}
    types = []
    for t in e.get("type", []):
        entry: dict[str, Any] = {"code": _type_code(t)}
        targets = [p.rsplit("/", 1)[-1] for p in t.get("targetProfile", [])]
        if targets:
            entry["targets"] = targets
        types.append(entry)
    if types:
        out["types"] = types
    if e.get("isSummary"):
        out["summary"] = True
    if e.get("isModifier"):
        out["modifier"] = True
    if "contentReference" in e:
        out["ref"] = e["contentReference"].lstrip("#")
    binding = e.get("binding")
    if binding and binding.get("strength") == "required" and binding.get("valueSet"):
        out["binding"] = binding["valueSet"].split("|")[0]
    return out


def structures(folder: Path) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    types: dict[str, Any] = {}
    primitives: dict[str, str] = {}
    resources: list[str] = []
    for sd in _bundle(folder, "Bundle-types.json") + _bundle(folder, "Bundle-resources.json"):
        if sd["resourceType"] != "StructureDefinition" or sd.get("derivation") == "constraint":
            continue
        kind, name = sd["kind"], sd["type"]
        if kind == "logical":
            continue
        if kind == "primitive-type":
            value = next(x for x in sd["snapshot"]["element"] if x["path"].endswith(".value"))
            regex = [x["valueString"] for x in value.get("type", [{}])[0].get("extension", [])
                     if x["url"] == REGEX_EXT]
            primitives[name] = regex[0] if regex else ""
            continue
        if kind == "resource" and not sd.get("abstract"):
            resources.append(name)
        elements = {e["path"]: _element(e) for e in sd["snapshot"]["element"][1:]}
        types[name] = {"kind": kind, "abstract": bool(sd.get("abstract")),
                       "base": sd.get("baseDefinition", "").rsplit("/", 1)[-1],
                       "elements": elements}
    return types, primitives, sorted(resources)


def _concepts(concepts: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for c in concepts:
        out.append(c["code"])
        out.extend(_concepts(c.get("concept", [])))
    return out


def value_sets(folder: Path, wanted: set[str]) -> dict[str, list[list[str]]]:
    """Codes of each wanted value set that can be expanded from the package alone."""
    all_resources = (_bundle(folder, "Bundle-valuesets.json")
                     + _bundle(folder, "Bundle-v3-valuesets.json"))
    code_systems = {r["url"]: r for r in all_resources if r["resourceType"] == "CodeSystem"}
    sets = {r["url"]: r for r in all_resources if r["resourceType"] == "ValueSet"}

    def expand(url: str, depth: int = 0) -> list[list[str]] | None:
        vs = sets.get(url)
        if vs is None or depth > 5:
            return None
        codes: list[list[str]] = []
        for inc in vs.get("compose", {}).get("include", []):
            if inc.get("filter"):
                return None
            system = inc.get("system")
            if "concept" in inc:
                codes.extend([system, c["code"]] for c in inc["concept"])
            elif system:
                cs = code_systems.get(system)
                if cs is None or cs.get("content") != "complete":
                    return None
                codes.extend([system, c] for c in _concepts(cs.get("concept", [])))
            for nested in inc.get("valueSet", []):
                sub = expand(nested.split("|")[0], depth + 1)
                if sub is None:
                    return None
                codes.extend(sub)
        if vs.get("compose", {}).get("exclude"):
            return None
        return codes

    out: dict[str, list[list[str]]] = {}
    for url in sorted(wanted):
        codes = expand(url)
        if codes:
            out[url] = codes
    return out


def _split_union(expression: str) -> list[str]:
    """Split a FHIRPath expression on top-level ``|``."""
    parts, depth, current = [], 0, []
    for ch in expression:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _root(part: str) -> str:
    return re.match(r"^\(*([A-Za-z]+)", part).group(1)  # type: ignore[union-attr]


def search_parameters(folder: Path, resources: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    by_url = {}
    for sp in _bundle(folder, "Bundle-searchParams.json"):
        by_url[sp["url"]] = sp
    for sp in by_url.values():
        expression = sp.get("expression")
        if not expression:
            continue  # _text, _content, _query, _list, _has: handled (or refused) by the engine
        for base in sp["base"]:
            bases = resources if base in ("Resource", "DomainResource") else [base]
            key = "Resource" if base in ("Resource", "DomainResource") else base
            parts = []
            for part in _split_union(expression):
                root = _root(part)
                if root not in (base, "Resource", "DomainResource"):
                    continue
                m = RESOLVE.match(part.strip("()") if part.startswith("(") and part.endswith(")")
                                  and "resolve" in part else part)
                if m:
                    parts.append({"expr": m.group("path"), "resolve": m.group("type")})
                else:
                    parts.append({"expr": part})
            if not parts or not bases:
                continue
            entry: dict[str, Any] = {"type": sp["type"], "url": sp["url"], "parts": parts}
            if sp.get("target"):
                entry["target"] = sp["target"]
            if sp.get("component"):
                entry["components"] = [
                    {"param": by_url[c["definition"]]["code"], "type": by_url[c["definition"]]["type"],
                     "expr": c["expression"]}
                    for c in sp["component"]]
            if sp.get("modifier"):
                entry["modifier"] = sp["modifier"]
            out.setdefault(key, {})[sp["code"]] = entry
    return out


def compartment(folder: Path) -> dict[str, list[str]]:
    with open(folder / "CompartmentDefinition-patient.json", encoding="utf-8") as f:
        cd = json.load(f)
    return {r["code"]: r["param"] for r in cd["resource"] if r.get("param")}


def main(folder: Path) -> None:
    types, primitives, resources = structures(folder)
    wanted = {el["binding"] for t in types.values() for el in t["elements"].values()
              if "binding" in el}
    data = {
        "fhirVersion": "4.0.1",
        "source": "npm hl7.fhir.r4.examples@4.0.1 (HL7 FHIR R4, CC0)",
        "resources": resources,
        "primitives": primitives,
        "types": types,
        "valueSets": value_sets(folder, wanted),
        "search": search_parameters(folder, resources),
        "patientCompartment": compartment(folder),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    with gzip.GzipFile(OUT, "wb", mtime=0) as f:
        f.write(raw)
    print(f"{OUT}: {len(resources)} resources, {len(types)} structures, "
          f"{len(data['valueSets'])} value sets, "
          f"{sum(len(v) for v in data['search'].values())} search parameters, "
          f"{len(raw) / 1e6:.1f} MB raw, {OUT.stat().st_size / 1e6:.2f} MB gz")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
