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
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from bench import client, data, report
from bench.servers import Server, start_orthanc, start_vesalius

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
            except (client.BenchError, OSError, ValueError, KeyError) as exc:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--scale", type=int, default=30_000,
                        help="small instances in the large QIDO/ingest phase; the small phase "
                             "has a tenth of them (default 30000; 100000 is the issue's target)")
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
    args = parser.parse_args(argv)
    if args.report_only:
        PERFORMANCE_MD.write_text(report.markdown(json.loads(args.results.read_text())))
        log(f"report: {PERFORMANCE_MD}")
        return 0
    large = args.scale
    small = large // 10
    if small % args.batch or large % args.batch:
        parser.error("--scale/10 must be a multiple of --batch")
    window = max(1, min(args.window, small // 2) // args.batch)

    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    log(f"preparing data in {data.cache_root()} (cached after the first run)")
    ct_batches, ct_series = data.ct_dataset(args.batch)
    small_batches = data.small_dataset(large, args.batch)
    target = ct_series[0]

    workroot = Path(tempfile.mkdtemp(prefix="run-", dir=data.cache_root()))
    servers: list[Server] = []
    try:
        servers.append(start_vesalius(workroot / "vesalius"))
        servers.append(start_orthanc(workroot / "orthanc"))
        for s in servers:
            log(f"{s.name} {s.version} at {s.dicomweb} (pid {s.pid})")
        rec = Recorder(servers)

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
        totals = {"small": ct_total + small, "large": ct_total + large}
        scale_phase(rec, "small", phases["small"], window, args.threads, args.qido_runs)
        scale_phase(rec, "large", phases["large"], window, args.threads, args.qido_runs)
        disk = {s.name: s.disk_bytes() for s in servers}
    finally:
        for s in servers:
            log(f"stopping {s.name} (pid {s.pid})")
            s.stop()
        if not args.keep:
            shutil.rmtree(workroot, ignore_errors=True)

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
        },
        "servers": rec.results,
    }
    results["meta"]["disagreements"] = check_agreement(rec.results, ["small", "large"])
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1))
    log(f"raw results: {args.results}")
    if not args.no_docs:
        PERFORMANCE_MD.write_text(report.markdown(results))
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
