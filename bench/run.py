"""``make bench``: Vesalius and Orthanc side by side, same data, same client, same run.

Both servers run as real subprocesses on loopback with fresh storage. Each
measurement runs against Vesalius, then against Orthanc, before the next one
starts, so the two never compete for the CPU. Results go to
``bench/results/latest.json`` and ``docs/performance.md``.
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
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pynetdicom

from bench import client, data, dimse, fhir, report, viewer
from bench.servers import (
    BENCH_DEST_AET,
    DimsePeers,
    Server,
    StoreScp,
    free_port,
    start_orthanc,
    start_storescp,
    start_vesalius,
)
from vesalius.config import Settings

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "latest.json"
PERFORMANCE_MD = REPO / "docs" / "performance.md"

QUERIES: dict[str, dict[str, str]] = {
    "PatientID exact": {"PatientID": data.SmallLayout.patient_id(7)},
    "PatientName wildcard": {"PatientName": "NAME01*"},
    "StudyDate range": {"StudyDate": "20150301-20150320"},
    "ModalitiesInStudy": {"ModalitiesInStudy": "PT"},
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class Recorder:
    """Per-server results; a server error is recorded next to the numbers, not hidden."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self.results: dict[str, dict[str, Any]] = {s.name: {"errors": []} for s in servers}

    def each(self, step: str, measure: Callable[[Server], Any]) -> None:
        for server in self.servers:
            log(f"{step}: {server.name}")
            try:
                self.results[server.name][step] = measure(server)
            except (RuntimeError, OSError, ValueError, KeyError) as exc:
                message = f"{step}: {type(exc).__name__}: {exc}"
                log(f"  ERROR {server.name} {message}")
                self.results[server.name]["errors"].append(message)


def ingest(server: Server, batches: list[data.Batch], threads: int) -> dict[str, Any]:
    result = client.stow(server.dicomweb, batches, threads)
    if result.errors:
        raise client.BenchError(
            f"STOW: {len(result.errors)} of {len(batches)} requests failed; "
            f"first: {result.errors[0]}"
        )
    log(f"  {result.instances} instances in {result.seconds:.1f} s: "
        f"{result.instances_per_s:.1f} inst/s, {result.mb_per_s:.1f} MB/s")
    return result.as_dict()


def scale_phase(rec: Recorder, label: str, batches: list[data.Batch], window: int,
                threads: int, qido_runs: int) -> None:
    """Ingest ``batches`` (timing the last ``window`` batches separately), then QIDO."""
    bulk, last = batches[:-window], batches[-window:]

    def measure_ingest(server: Server) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if bulk:
            out["bulk"] = ingest(server, bulk, threads)
        out["last"] = ingest(server, last, threads)
        return out

    rec.each(f"ingest_{label}", measure_ingest)

    def measure_qido(server: Server) -> dict[str, Any]:
        out = {}
        for name, params in QUERIES.items():
            timings = client.qido_latency(server.dicomweb, params, qido_runs)
            log(f"  {name}: {timings.detail['results']} studies, "
                f"p50 {timings.p50_ms:.1f} ms, p95 {timings.p95_ms:.1f} ms")
            out[name] = timings.as_dict()
        return out

    rec.each(f"qido_{label}", measure_qido)


def dimse_phase(rec: Recorder, series: list[data.DimseSeries], scp: StoreScp,
                associations: int, find_runs: int, move_runs: int,
                echo_runs: int) -> dict[str, Any]:
    """C-ECHO, C-STORE over one and over ``associations`` associations, C-FIND, C-MOVE.

    Returns the client's own ceiling: the same C-STORE client sending the single-association
    series to dcmtk ``storescp --ignore``, which discards what it receives.
    """
    single, parallel = series[:1], series[1:]
    log("cstore client ceiling: pynetdicom SCU -> dcmtk storescp --ignore, one association")
    ceiling = dimse.c_store(scp, single, 1).as_dict()
    log(f"  {ceiling['instances']} instances in {ceiling['seconds']:.1f} s: "
        f"{ceiling['instances_per_s']:.1f} inst/s, {ceiling['mb_per_s']:.1f} MB/s")

    def measure_echo(server: Server) -> dict[str, Any]:
        timings = dimse.echo_latency(server, echo_runs)
        log(f"  associate+echo+release p50 {timings.p50_ms:.1f} ms, p95 {timings.p95_ms:.1f} ms")
        return timings.as_dict()

    rec.each("dimse_echo", measure_echo)

    def store(batch: list[data.DimseSeries], n: int) -> Callable[[Server], dict[str, Any]]:
        def measure(server: Server) -> dict[str, Any]:
            result = dimse.c_store(server, batch, n).as_dict()
            log(f"  {result['instances']} instances over {n} association(s) in "
                f"{result['seconds']:.1f} s: {result['instances_per_s']:.1f} inst/s, "
                f"{result['mb_per_s']:.1f} MB/s")
            return result
        return measure

    rec.each("cstore_single", store(single, 1))
    rec.each("cstore_parallel", store(parallel, associations))

    def measure_counts(server: Server) -> dict[str, int]:
        counts = dimse.stored_counts(server, series)
        log(f"  stored instances per DIMSE series (QIDO-RS): {list(counts.values())}")
        return counts

    rec.each("cstore_counts", measure_counts)

    def measure_find(server: Server) -> dict[str, Any]:
        out = {}
        for name, params in QUERIES.items():
            timings = dimse.find_latency(server, params, find_runs)
            log(f"  {name}: {timings.detail['results']} studies, "
                f"p50 {timings.p50_ms:.1f} ms, p95 {timings.p95_ms:.1f} ms")
            out[name] = timings.as_dict()
        return out

    rec.each("cfind", measure_find)

    def measure_move(server: Server) -> dict[str, Any]:
        before = scp.received()
        result = dimse.c_move(server, single[0], BENCH_DEST_AET, move_runs)
        deadline = time.monotonic() + 5
        expected = result["instances"] * move_runs
        while scp.received() - before < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        result["destination_received"] = scp.received() - before
        log(f"  {result['instances']} instances in {result['median_seconds']:.1f} s (median of "
            f"{move_runs}): {result['instances_per_s']:.1f} inst/s, "
            f"{result['mb_per_s']:.1f} MB/s; storescp received "
            f"{result['destination_received']} of {expected}")
        return result

    rec.each("cmove", measure_move)
    return ceiling


def check_dimse(results: dict[str, dict[str, Any]], series: list[data.DimseSeries],
                move_runs: int) -> list[str]:
    """Stored counts, C-FIND answers and C-MOVE sub-operations must match on both servers."""
    problems: list[str] = []
    for name, r in results.items():
        counts = r.get("cstore_counts")
        if counts is not None:
            for s in series:
                if counts.get(s.series_uid) != len(s.datasets):
                    problems.append(f"{name}: DIMSE series {s.patient_id} has "
                                    f"{counts.get(s.series_uid)} instances after C-STORE, "
                                    f"expected {len(s.datasets)}")
        move = r.get("cmove")
        if move is not None:
            expected = move["instances"] * move_runs
            if move["destination_received"] != expected:
                problems.append(f"{name}: C-MOVE destination received "
                                f"{move['destination_received']} instances, expected {expected}")
    v, o = results["Vesalius"].get("cfind", {}), results["Orthanc"].get("cfind", {})
    for name in QUERIES:
        if name in v and name in o and v[name]["study_uids"] != o[name]["study_uids"]:
            problems.append(f"cfind {name}: Vesalius {v[name]['results']} studies, "
                            f"Orthanc {o[name]['results']} studies")
    for name in QUERIES:
        q = results["Vesalius"].get("qido_large", {}).get(name)
        if q is not None and name in v and len(v[name]["study_uids"]) < len(q["study_uids"]):
            problems.append(f"Vesalius cfind {name}: {v[name]['results']} studies, fewer than "
                            f"QIDO-RS before the DIMSE phase ({q['results']})")
    return problems


def check_agreement(results: dict[str, dict[str, Any]], labels: list[str]) -> list[str]:
    """QIDO answers must be the same studies on both servers, or the comparison is void."""
    problems: list[str] = []
    vesalius, orthanc = results["Vesalius"], results["Orthanc"]
    for label in labels:
        step = f"qido_{label}"
        for name in QUERIES:
            v = vesalius.get(step, {}).get(name)
            o = orthanc.get(step, {}).get(name)
            if v is None or o is None:
                continue
            if v["study_uids"] != o["study_uids"]:
                problems.append(
                    f"{step} {name}: Vesalius {v['results']} studies, "
                    f"Orthanc {o['results']} studies"
                )
    for step in ("metadata", "retrieve"):
        v, o = vesalius.get(step), orthanc.get(step)
        if v and o:
            key = "instances" if step == "metadata" else "parts"
            if v[key] != o[key]:
                problems.append(f"{step}: Vesalius {v[key]} {key}, Orthanc {o[key]} {key}")
    return problems


def dicomweb_phases(rec: Recorder, args: argparse.Namespace, ct_batches: list[data.Batch],
                    small_batches: list[data.Batch], target: data.CtSeries, small: int,
                    large: int, window: int) -> dict[str, int]:
    """STOW-RS of the CT series, WADO-RS on one of them, then ingest and QIDO at two scales."""
    rec.each("ct_ingest", lambda s: ingest(s, ct_batches, args.threads))
    rec.each("metadata", lambda s: client.series_metadata(
        s.dicomweb, target.study_uid, target.series_uid, args.wado_runs)[1].as_dict())
    rec.each("retrieve", lambda s: client.series_retrieve(
        s.dicomweb, target.study_uid, target.series_uid, max(3, args.wado_runs // 4)
    ).as_dict())
    rec.each("frames", lambda s: client.frame_latency(
        s.dicomweb, target.study_uid, target.series_uid, target.sop_uids, args.wado_runs
    ).as_dict())

    ct_total = sum(b.instances for b in ct_batches)
    phases = {"small": small_batches[: small // args.batch],
              "large": small_batches[small // args.batch:]}
    scale_phase(rec, "small", phases["small"], window, args.threads, args.qido_runs)
    scale_phase(rec, "large", phases["large"], window, args.threads, args.qido_runs)
    return {"small": ct_total + small, "large": ct_total + large}


def viewer_phase(args: argparse.Namespace) -> dict[str, Any]:
    """The web viewer on its own demo server (``bench.viewer``); a failure is recorded in
    the results instead of losing the phases before it."""
    started, load = time.monotonic(), list(os.getloadavg())
    try:
        out = viewer.run_phase(args.viewer_slices, args.viewer_runs, 0, args.keep,
                               timeout_s=600)
    except Exception as exc:  # the browser's errors are not OSError/RuntimeError
        log(f"ERROR viewer phase: {type(exc).__name__}: {exc}")
        out = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
    out["meta"] = viewer.describe("make bench (viewer phase of python -m bench.run)", started,
                                  load)
    return out


def write_report(results: dict[str, Any]) -> None:
    """``docs/performance.md``: the DICOM and FHIR sections, then the viewer's."""
    PERFORMANCE_MD.write_text(report.markdown(results))
    if "viewer" in results:
        viewer.update_docs(PERFORMANCE_MD, viewer.section(results["viewer"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--scale", type=int, default=100_000,
                        help="small instances in the large QIDO/ingest phase; the small phase "
                             "has a tenth of them (default 100000, the issue's target)")
    parser.add_argument("--threads", type=int, default=4, help="concurrent STOW clients")
    parser.add_argument("--batch", type=int, default=20, help="instances per STOW request")
    parser.add_argument("--qido-runs", type=int, default=50)
    parser.add_argument("--wado-runs", type=int, default=20)
    parser.add_argument("--window", type=int, default=2000,
                        help="last N small instances of each phase timed for the ingest rate")
    parser.add_argument("--no-docs", action="store_true",
                        help="write only the JSON results, not docs/performance.md")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="where to write the raw JSON results (default %(default)s)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the servers' storage and logs under the cache directory")
    parser.add_argument("--report-only", action="store_true",
                        help="re-render docs/performance.md from bench/results/latest.json")
    parser.add_argument("--no-dimse", action="store_true",
                        help="skip the DIMSE phase (C-ECHO, C-STORE, C-FIND, C-MOVE)")
    parser.add_argument("--no-dicomweb", action="store_true",
                        help="skip the DICOMweb phases (for developing the DIMSE phase; "
                             "implies --no-docs)")
    parser.add_argument("--associations", type=int, default=4,
                        help="parallel associations in the multi-association C-STORE test")
    parser.add_argument("--move-runs", type=int, default=3, help="C-MOVEs of the series")
    parser.add_argument("--echo-runs", type=int, default=20)
    parser.add_argument("--fhir-resources", type=int, default=100_000,
                        help="FHIR resources loaded after the DICOM phases (searches at a "
                             "tenth and at all; bench/fhir.py); 0 skips the FHIR phases")
    args = parser.parse_args(argv)
    if args.report_only:
        write_report(json.loads(args.results.read_text()))
        log(f"report: {PERFORMANCE_MD}")
        return 0
    large = args.scale
    small = large // 10
    if small % args.batch or large % args.batch:
        parser.error("--scale/10 must be a multiple of --batch")
    window = max(1, min(args.window, small // 2) // args.batch)
    if args.no_dicomweb:
        args.no_docs = True
    if args.no_dimse and args.no_dicomweb:
        parser.error("--no-dimse and --no-dicomweb leave nothing to measure")

    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    load_at_start = list(os.getloadavg())
    log(f"load average {load_at_start[0]:.2f} {load_at_start[1]:.2f} {load_at_start[2]:.2f}")
    log(f"preparing data in {data.cache_root()} (cached after the first run)")
    ct_batches, ct_series = data.ct_dataset(args.batch)
    small_batches = data.small_dataset(large, args.batch)
    target = ct_series[0]
    dimse_series: list[data.DimseSeries] = []
    if not args.no_dimse:
        # One series for the single association, two (600 instances) for the parallel test.
        dimse_series = data.dimse_series(ct_batches, 3)
        log(f"DIMSE data: {len(dimse_series)} series of {data.CT_SLICES_PER_SERIES} "
            "CT slices in memory")

    workroot = Path(tempfile.mkdtemp(prefix="run-", dir=data.cache_root()))
    servers: list[Server] = []
    scp: StoreScp | None = None
    totals = {"small": 0, "large": 0}
    ct_total = sum(b.instances for b in ct_batches)
    try:
        peers: DimsePeers | None = None
        if not args.no_dimse:
            scp = start_storescp(workroot / "storescp")
            peers = DimsePeers(scu_port=free_port(), dest_port=scp.port)
            log(f"C-MOVE destination: dcmtk storescp --ignore, {BENCH_DEST_AET} on {scp.port} "
                f"(pid {scp.process.pid})")
        servers.append(start_vesalius(workroot / "vesalius", peers))
        servers.append(start_orthanc(workroot / "orthanc", peers))
        for s in servers:
            log(f"{s.name} {s.version} at {s.dicomweb} (pid {s.pid})"
                + (f", DICOM {s.ae_title}@{s.dicom_port}" if s.dicom_port else ""))
        rec = Recorder(servers)
        if not args.no_dicomweb:
            totals = dicomweb_phases(rec, args, ct_batches, small_batches, target,
                                     small, large, window)
        ceiling: dict[str, Any] = {}
        if scp is not None:
            ceiling = dimse_phase(rec, dimse_series, scp, args.associations, args.qido_runs,
                                  args.move_runs, args.echo_runs)
        fhir_results: dict[str, Any] | None = None
        if args.fhir_resources:
            fhir_started, fhir_load = time.monotonic(), list(os.getloadavg())
            fhir_results = fhir.run_phases(servers[0].base_url + "/fhir", args.fhir_resources,
                                           threads=args.threads, runs=args.qido_runs)
            fhir_results["meta"] = fhir.describe(
                servers[:1], "make bench (FHIR phases of python -m bench.run)", fhir_started,
                fhir_load)
        disk = {s.name: s.disk_bytes() for s in servers}
    finally:
        for s in servers:
            log(f"stopping {s.name} (pid {s.pid})")
            s.stop()
        if scp is not None:
            scp.stop()
        if not args.keep:
            shutil.rmtree(workroot, ignore_errors=True)

    viewer_results = viewer_phase(args) if args.viewer_runs else None
    results = {
        "meta": {
            **report.environment(servers),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "make bench" + (f" (python -m bench.run {' '.join(argv or sys.argv[1:])})"
                                       if (argv or sys.argv[1:]) else ""),
            "threads": args.threads, "batch": args.batch, "qido_runs": args.qido_runs,
            "wado_runs": args.wado_runs, "scale": large, "totals": totals,
            "window_instances": window * args.batch,
            "ct": {"series": len(ct_series), "slices_per_series": data.CT_SLICES_PER_SERIES,
                   "instances": ct_total, "instance_bytes": target.instance_bytes},
            "small_instance_rows": data.SMALL_ROWS,
            "queries": QUERIES, "disk_bytes": disk,
            "wall_seconds": time.monotonic() - started,
            "load_average_at_start": load_at_start,
            "load_average_at_end": list(os.getloadavg()),
            "vesalius_http_workers": Settings().resolved_http_workers,
            "phases": {"dicomweb": not args.no_dicomweb, "dimse": not args.no_dimse},
            "server_settings": {s.name: s.settings for s in servers},
        },
        "servers": rec.results,
    }
    if not args.no_dimse:
        results["meta"]["dimse"] = {
            "associations": args.associations, "find_runs": args.qido_runs,
            "move_runs": args.move_runs, "echo_runs": args.echo_runs,
            "single_instances": len(dimse_series[0].datasets),
            "parallel_instances": sum(len(x.datasets) for x in dimse_series[1:]),
            "instance_bytes": dimse_series[0].nbytes // len(dimse_series[0].datasets),
            "find_return_keys": list(dimse.FIND_RETURN_KEYS),
            "client_ceiling": ceiling,
            "destination": "dcmtk storescp --ignore +xa (receives, does not store)",
            "client": f"pynetdicom {pynetdicom.__version__}, TCP_NODELAY, "
                      "max PDU received 16382 (pynetdicom default)",
        }
    if fhir_results is not None:
        results["fhir"] = fhir_results
    if viewer_results is not None:
        results["viewer"] = viewer_results
    results["meta"]["disagreements"] = (
        check_agreement(rec.results, ["small", "large"])
        + check_dimse(rec.results, dimse_series, args.move_runs)
    )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1))
    log(f"raw results: {args.results}")
    if not args.no_docs:
        write_report(results)
        log(f"report: {PERFORMANCE_MD}")
    for problem in results["meta"]["disagreements"]:
        log(f"DISAGREEMENT {problem}")
    for name, r in rec.results.items():
        for error in r["errors"]:
            log(f"ERROR {name}: {error}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        sys.exit(130)
