"""FHIR record benchmark: load a synthetic population by transaction, then search it.

The population (``bench.fhir_data``) is loaded over HTTP as transaction Bundles
(https://hl7.org/fhir/R4/http.html#transaction) from a few client threads. Searches run after a
tenth of it is loaded and again after all of it, so the report can show how latency grows with
the size of the record. Every query's values come from the loaded data, so every query must
match: a non-200 answer, a Bundle that is not a ``searchset`` or an empty result is recorded
as an error next to the numbers.

Standalone: ``python -m bench.fhir --resources N`` starts its own ``vesalius serve``, runs the
phases, merges the results under ``"fhir"`` in ``bench/results/latest.json`` and replaces the
FHIR section of ``docs/performance.md`` between its markers. ``make bench`` runs the same
phases after the DICOM ones (``bench.run --fhir-resources``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from bench import fhir_data, report
from bench.client import ThreadClients, Timings, new_client, timed
from bench.data import cache_root
from bench.servers import Server, start_vesalius
from vesalius.config import Settings

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "latest.json"
PERFORMANCE_MD = REPO / "docs" / "performance.md"
FHIR_JSON = "application/fhir+json"
QUERY_SEED = 7

QUERIES: dict[str, str] = {
    "token": "Observation?code=http://loinc.org|<code>&_count=20",
    "date range": "Observation?date=ge<month>&date=lt<next month>",
    "string": "Patient?name=<family>",
    "chained": f"Observation?subject.identifier={fhir_data.IDENTIFIER_SYSTEM}|<mrn>",
    "reference": "Observation?subject=Patient/<id>",
    "_include": "Encounter?date=ge<day>&date=lt<day+7>&_include=Encounter:subject",
    "_revinclude": f"Patient?identifier={fhir_data.IDENTIFIER_SYSTEM}|<mrn>"
                   "&_revinclude=Condition:subject",
    "$everything": "Patient/<id>/$everything",
}
"""The measured interactions, as the report shows them (``<…>`` varies from run to run)."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- load ------------------------------------------------------------------------------------


def _check_transaction(response: httpx.Response, sent: fhir_data.TransactionBundle
                       ) -> tuple[list[str], str | None]:
    """The new Patients' ids, or why the transaction failed."""
    if response.status_code != 200:
        return [], f"HTTP {response.status_code}: {response.text[:300]}"
    body = response.json()
    entries = body.get("entry", [])
    if body.get("type") != "transaction-response" or len(entries) != sent.resources:
        return [], (f"expected a transaction-response of {sent.resources} entries, got "
                    f"{body.get('type')} of {len(entries)}")
    ids = []
    for position in sent.patient_entries:
        location = entries[position].get("response", {}).get("location", "")
        parts = location.split("/")
        if len(parts) < 2 or parts[0] != "Patient":
            return [], f"entry {position}: no Patient location ({location!r})"
        ids.append(parts[1])
    return ids, None


def load(fhir: str, first_patient: int, patients: int, threads: int, patients_per_bundle: int,
         ids: dict[int, str]) -> dict[str, Any]:
    """POST the transaction Bundles of ``patients`` patients; new Patient ids go into ``ids``.

    Bundles are built in the client threads (deterministic per patient), so the client never
    holds the whole population; the time to build them is inside the measured time, and is
    ~1/100 of the server's (see ``fhir_data``).
    """
    clients = ThreadClients()
    lock = threading.Lock()
    errors: list[str] = []
    done = [0, 0]

    def send(start: int) -> None:
        count = min(patients_per_bundle, first_patient + patients - start)
        sent = next(fhir_data.bundles(start, count, patients_per_bundle))
        body = json.dumps(sent.bundle, separators=(",", ":")).encode()
        response = clients.get().post(fhir, content=body,
                                 headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON})
        new_ids, error = _check_transaction(response, sent)
        with lock:
            if error:
                errors.append(f"transaction of patients {start}..{start + count - 1}: {error}")
                return
            ids.update(zip(sent.patients, new_ids, strict=True))
            done[0] += 1
            done[1] += sent.resources
            if done[0] % 100 == 0:
                log(f"  {done[1]:,} resources loaded")

    starts = range(first_patient, first_patient + patients, patients_per_bundle)
    begin = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(send, starts))
    seconds = time.perf_counter() - begin
    clients.close()
    bundles, resources = done
    return {
        "bundles": bundles, "resources": resources, "seconds": seconds, "threads": threads,
        "resources_per_bundle": patients_per_bundle * fhir_data.RESOURCES_PER_PATIENT,
        "bundles_per_s": bundles / seconds, "resources_per_s": resources / seconds,
        "failed_bundles": len(errors), "errors": errors[:5],
    }


# -- search ----------------------------------------------------------------------------------


def _month_window(instant: str) -> tuple[str, str]:
    year, month = int(instant[:4]), int(instant[5:7])
    after = (year + month // 12, month % 12 + 1)
    return f"{year:04d}-{month:02d}-01", f"{after[0]:04d}-{after[1]:02d}-01"


_FIRST_OBSERVATION = 1 + fhir_data.ENCOUNTERS + fhir_data.CONDITIONS
"""Position of a patient's first Observation among its entries (see ``patient_entries``)."""


def query_urls(ids: dict[int, str], runs: int) -> dict[str, list[str]]:
    """``runs`` + 1 URLs per query (the first is the untimed warm-up), each with values taken
    from a loaded patient (drawn with a fixed seed), so every one of them must match."""
    rng = np.random.default_rng(QUERY_SEED)
    loaded = sorted(ids)
    urls: dict[str, list[str]] = {name: [] for name in QUERIES}
    system = quote(fhir_data.IDENTIFIER_SYSTEM, safe="")
    for run in range(runs + 1):
        index = loaded[int(rng.integers(len(loaded)))]
        entries = fhir_data.patient_entries(index)
        patient_id, mrn = ids[index], fhir_data.mrn(index)
        pick = int(rng.integers(_FIRST_OBSERVATION, _FIRST_OBSERVATION + fhir_data.OBSERVATIONS))
        observation = entries[pick]["resource"]
        encounter = entries[1 + int(rng.integers(fhir_data.ENCOUNTERS))]["resource"]
        code = fhir_data.LABS[run % len(fhir_data.LABS)][0]
        month, next_month = _month_window(observation["effectiveDateTime"])
        day = dt.date.fromisoformat(encounter["period"]["start"][:10])
        week = (day - dt.timedelta(days=int(rng.integers(7)))).isoformat()
        week_end = (dt.date.fromisoformat(week) + dt.timedelta(days=7)).isoformat()
        family = entries[0]["resource"]["name"][0]["family"]
        urls["token"].append(f"Observation?code={quote(fhir_data.LOINC, safe='')}%7C{code}"
                             "&_count=20")
        urls["date range"].append(f"Observation?date=ge{month}&date=lt{next_month}")
        urls["string"].append(f"Patient?name={family}")
        urls["chained"].append(f"Observation?subject.identifier={system}%7C{mrn}")
        urls["reference"].append(f"Observation?subject=Patient/{patient_id}")
        urls["_include"].append(f"Encounter?date=ge{week}&date=lt{week_end}"
                                "&_include=Encounter:subject")
        urls["_revinclude"].append(f"Patient?identifier={system}%7C{mrn}"
                                   "&_revinclude=Condition:subject")
        urls["$everything"].append(f"Patient/{patient_id}/$everything")
    return urls


def _searchset(response: httpx.Response, url: str) -> tuple[int, int, int]:
    """Entries matched and included, and the Bundle's total (every match, not just this page;
    -1 when absent); raises on anything but a non-empty searchset."""
    if response.status_code != 200:
        raise ValueError(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
    body = response.json()
    if body.get("resourceType") != "Bundle" or body.get("type") != "searchset":
        raise ValueError(f"{url}: not a searchset Bundle ({body.get('resourceType')}, "
                         f"{body.get('type')})")
    entries = body.get("entry", [])
    matched = sum(1 for e in entries if e.get("search", {}).get("mode", "match") == "match")
    if not entries:
        raise ValueError(f"{url}: no entries, but its values come from a loaded patient")
    return matched, len(entries) - matched, int(body.get("total", -1))


def search_latency(fhir: str, urls: list[str]) -> dict[str, Any]:
    """The first URL untimed, then one timed GET per remaining URL."""
    seconds: list[float] = []
    matched: list[int] = []
    included: list[int] = []
    totals: list[int] = []
    with new_client() as client:
        def get(url: str) -> tuple[int, int, int]:
            return _searchset(client.get(f"{fhir}/{url}", headers={"Accept": FHIR_JSON}), url)

        get(urls[0])
        for url in urls[1:]:
            elapsed, (m, i, t) = timed(lambda u=url: get(u))  # type: ignore[misc]
            seconds.append(elapsed)
            matched.append(m)
            included.append(i)
            totals.append(t)
    return Timings(seconds, {
        "matched_min": min(matched), "matched_max": max(matched),
        "matched_mean": sum(matched) / len(matched),
        "included_mean": sum(included) / len(included),
        "total_mean": sum(totals) / len(totals), "example": urls[1],
    }).as_dict()


def search_phase(fhir: str, ids: dict[int, str], runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, urls in query_urls(ids, runs).items():
        try:
            out[name] = search_latency(fhir, urls)
        except (ValueError, httpx.HTTPError) as exc:
            log(f"  ERROR {name}: {exc}")
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            continue
        r = out[name]
        log(f"  {name}: p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms "
            f"({r['matched_mean']:.1f} matched, {r['included_mean']:.1f} included)")
    return out


# -- phases ----------------------------------------------------------------------------------


def run_phases(fhir: str, resources: int, *, threads: int = 4, runs: int = 50,
               patients_per_bundle: int = 5) -> dict[str, Any]:
    """Load a tenth, search, load the rest, search; the ``"fhir"`` part of the results."""
    patients = max(10, resources // fhir_data.RESOURCES_PER_PATIENT)
    small = patients // 10
    ids: dict[int, str] = {}
    out: dict[str, Any] = {
        "resources_target": patients * fhir_data.RESOURCES_PER_PATIENT,
        "resources_per_patient": fhir_data.RESOURCES_PER_PATIENT, "patients": patients,
        "threads": threads, "runs": runs, "queries": QUERIES, "phases": {},
    }
    for label, first, count in (("small", 0, small), ("large", small, patients - small)):
        log(f"FHIR load: patients {first}..{first + count - 1} "
            f"({count * fhir_data.RESOURCES_PER_PATIENT:,} resources, {threads} threads)")
        loaded = load(fhir, first, count, threads, patients_per_bundle, ids)
        log(f"  {loaded['resources']:,} resources in {loaded['seconds']:.1f} s: "
            f"{loaded['bundles_per_s']:.2f} bundles/s, {loaded['resources_per_s']:.1f} resources/s"
            + (f"; {loaded['failed_bundles']} bundles FAILED" if loaded["failed_bundles"] else ""))
        total = len(ids) * fhir_data.RESOURCES_PER_PATIENT
        log(f"FHIR search at {total:,} resources")
        out["phases"][label] = {"resources": total, "load": loaded,
                                "search": search_phase(fhir, ids, runs) if ids else {}}
    return out


# -- report ----------------------------------------------------------------------------------


def update_docs(path: Path, section: str) -> None:
    """Replace the text between the FHIR markers (or append it): the DICOM sections stay."""
    report.replace_section(path, report.FHIR_START, report.FHIR_END, section)


def merge_results(path: Path, fhir: dict[str, Any]) -> None:
    """``"fhir"`` replaced, every other key kept."""
    report.merge_results(path, "fhir", fhir)


def describe(servers: list[Server], command: str, started: float,
             load_at_start: list[float]) -> dict[str, Any]:
    """The run's environment, for the report (the FHIR section stands on its own)."""
    return {
        **report.environment(servers),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command, "wall_seconds": time.monotonic() - started,
        "load_average_at_start": load_at_start, "load_average_at_end": list(os.getloadavg()),
        "vesalius_http_workers": Settings().resolved_http_workers,
    }


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fhir", description=__doc__)
    parser.add_argument("--resources", type=int, default=100_000,
                        help="resources loaded in all (searches run at a tenth and at all)")
    parser.add_argument("--threads", type=int, default=4, help="concurrent transaction clients")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per query")
    parser.add_argument("--bundle-patients", type=int, default=5,
                        help="patients per transaction Bundle (50 resources each)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-docs", action="store_true",
                        help="write only the JSON results, not docs/performance.md")
    parser.add_argument("--keep", action="store_true", help="keep the server's data directory")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    load_at_start = list(os.getloadavg())
    cache_root().mkdir(parents=True, exist_ok=True)
    workroot = Path(tempfile.mkdtemp(prefix="fhir-", dir=cache_root()))
    server = start_vesalius(workroot / "vesalius")
    log(f"Vesalius {server.version} at {server.base_url} (pid {server.pid})")
    try:
        fhir = run_phases(server.base_url + "/fhir", args.resources, threads=args.threads,
                          runs=args.runs, patients_per_bundle=args.bundle_patients)
        fhir["disk_bytes"] = server.disk_bytes()
    finally:
        log(f"stopping Vesalius (pid {server.pid})")
        server.stop()
        if not args.keep:
            shutil.rmtree(workroot, ignore_errors=True)
    words = argv if argv is not None else sys.argv[1:]
    fhir["meta"] = describe([server], " ".join(["python -m bench.fhir", *words]), started,
                            load_at_start)
    merge_results(args.results, fhir)
    log(f"raw results: {args.results} (key \"fhir\")")
    if not args.no_docs:
        update_docs(PERFORMANCE_MD, report.fhir_section(fhir))
        log(f"report: {PERFORMANCE_MD}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; server stopped")
        sys.exit(130)
