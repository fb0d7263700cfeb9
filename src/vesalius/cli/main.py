"""The ``vesalius`` command: the second composition root."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from vesalius import __version__
from vesalius.archive.factory import build_archive
from vesalius.cli import accounts, keys
from vesalius.config import Settings, load_settings
from vesalius.core.errors import VesaliusError
from vesalius.node import Node, build_node


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="installation directory "
                        "(default $VESALIUS_DATA_DIR or ./data)")
    parser.add_argument("--config", type=Path, help="TOML configuration file "
                        "(default $VESALIUS_CONFIG)")


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return load_settings(args.config, data_dir=args.data_dir, **extra)


def load_demo(node: Node, slices: int) -> str:
    """The synthetic demo: the patients' clinical record, then their studies (idempotent).

    The record goes first so the imaging link files each study under the demo Patient (not
    a provisional one) and bases it on its order; the link is flushed before returning.
    """
    from vesalius.cli.importer import import_paths
    from vesalius.demo.record import demo_record_bundle
    from vesalius.demo.synthetic import write_demo

    response = node.record.process_bundle(demo_record_bundle(),
                                          base=f"{node.settings.base_url}/fhir")
    created = sum(e["response"]["status"].startswith("201") for e in response["entry"])
    with tempfile.TemporaryDirectory(prefix="vesalius-demo-") as tmp:
        paths = write_demo(Path(tmp), ct_slices=slices)
        summary = import_paths(node.archive, paths, progress=sys.stderr.isatty())
    studies = node.link.flush()
    return (f"{created} record resources created; {summary.line()}; "
            f"{studies} ImagingStudy resources written")


def demo_accounts(node: Node) -> str:
    """Sign-in accounts for every role, linked to the demo patient, their GP and hospital
    (idempotent); returns the printout of how to sign in as each."""
    from vesalius.demo.accounts import describe, ensure_demo_accounts
    from vesalius.demo.common import DEFAULT_PATIENT
    from vesalius.dicom.patient_identity import identifier_system

    system = identifier_system(DEFAULT_PATIENT.issuer)
    found = node.record.search("Patient", [
        ("identifier", f"{system}|{DEFAULT_PATIENT.patient_id}")]).matches
    patient = found[0] if found else {}

    def target(field: str, kind: str) -> str | None:
        value = patient.get(field)
        ref = (value[0] if isinstance(value, list) and value else value or {}).get("reference")
        return ref.removeprefix(f"{kind}/") if isinstance(ref, str) else None

    accounts = ensure_demo_accounts(node.auth, patient=patient.get("id"),
                                    practitioner=target("generalPractitioner", "Practitioner"),
                                    organization=target("managingOrganization", "Organization"))
    return describe(accounts)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from vesalius.dimse.handlers import DimseHandlers
    from vesalius.dimse.server import DicomServer
    from vesalius.security.tls import uvicorn_ssl_options
    from vesalius.web.app import create_app
    from vesalius.web.protocol import NoDelayH11Protocol

    settings = _settings(args, host=args.host, http_port=args.http_port,
                         http_workers=args.http_workers, dicom_port=args.dicom_port,
                         dicom_tls_port=args.dicom_tls_port,
                         ae_title=args.ae_title, load_demo=True if args.demo else None)
    tls = uvicorn_ssl_options(settings)  # generates the self-signed certificate if needed
    node = build_node(settings)
    if settings.load_demo and node.archive.reader.counts()["instances"] == 0:
        print("Loading the synthetic demo record and studies (first start)...", flush=True)
        print("demo:", load_demo(node, settings.demo_ct_slices), flush=True)
    if settings.load_demo:
        print(demo_accounts(node), flush=True)
    node.link.start()
    dicom = DicomServer(settings, DimseHandlers(settings, node.archive, node.registry,
                                                node.worklist, node.auditor))
    dicom.start()
    url = f"{'https' if tls else 'http'}://{settings.host}:{settings.http_port}"
    print(f"Vesalius {__version__} listening on {url}  (DICOMweb: {url}/dicom-web, "
          f"FHIR R4: {url}/fhir)", flush=True)
    if settings.dicom_port:
        print(f"DICOM AE {settings.ae_title} on {settings.host}:{settings.dicom_port}", flush=True)
    if settings.dicom_tls_port:
        print(f"DICOM TLS on {settings.host}:{settings.dicom_tls_port}", flush=True)
    workers = settings.resolved_http_workers
    try:
        if workers > 1:
            # Python is one core per process: several HTTP workers share the index and
            # blob store (SQLite WAL or PostgreSQL); DIMSE stays in this process.
            os.environ.update(settings.as_environment())
            uvicorn.run("vesalius.web.app:app_from_environment", factory=True,
                        workers=workers, host=settings.host, port=settings.http_port,
                        log_level=settings.log_level, access_log=False,
                        http=NoDelayH11Protocol, **tls)
        else:
            uvicorn.run(create_app(node), host=settings.host,
                        port=settings.http_port, log_level=settings.log_level,
                        access_log=False, http=NoDelayH11Protocol, **tls)
    finally:
        dicom.stop()
        node.link.stop()
    return 0


def cmd_ae(args: argparse.Namespace) -> int:
    node = build_node(_settings(args))
    if args.ae_command == "add":
        ae = node.registry.add(args.title, args.host, args.port, tls=args.tls,
                               permissions=args.allow.split(",") if args.allow else (),
                               replace=args.replace)
        print(f"added {ae.title} {ae.host}:{ae.port} tls={'yes' if ae.tls else 'no'} "
              f"allow={','.join(sorted(ae.permissions)) or '-'}")
    elif args.ae_command == "remove":
        node.registry.remove(args.title)
        print(f"removed {args.title}")
    else:
        for ae in node.registry.list():
            print(f"{ae.title:16} {ae.host}:{ae.port:<5} tls={'yes' if ae.tls else 'no':3} "
                  f"allow={','.join(sorted(ae.permissions)) or '-'}")
    return 0


def cmd_worklist(args: argparse.Namespace) -> int:
    node = build_node(_settings(args))
    if args.wl_command == "add":
        step = node.worklist.schedule(
            patient_id=args.patient_id, patient_name=args.patient_name, issuer=args.issuer,
            birth_date=args.birth_date, sex=args.sex, modality=args.modality,
            start_date=args.date, start_time=args.time, accession_number=args.accession,
            station_ae=args.station, description=args.description,
            requested_procedure_description=args.procedure)
        print(f"scheduled {step.sps_id} accession {step.accession_number} "
              f"study {step.study_uid}")
    else:
        for step in node.worklist.find([], include_done=args.all):
            print(f"{step.sps_id:12} {step.status:12} {step.start_date} {step.start_time:6} "
                  f"{step.modality:3} {step.station_ae:16} {step.accession_number:16} "
                  f"{step.patient_id}")
    return 0


def cmd_echo(args: argparse.Namespace) -> int:
    from vesalius.dimse.scu import echo

    node = build_node(_settings(args))
    status = echo(node.settings, node.registry, args.title)
    print(f"C-ECHO {args.title}: status 0x{status:04X}")
    return 0 if status == 0 else 1


def cmd_send(args: argparse.Namespace) -> int:
    from vesalius.dimse.scu import send

    node = build_node(_settings(args))
    report = send(node.settings, node.registry, node.archive, args.level, args.uid, args.to)
    for line in report.failures:
        print(f"failed: {line}", file=sys.stderr)
    print(f"sent {report.completed}, warnings {report.warnings}, failed {report.failed}")
    return 0 if report.failed == 0 else 1


def cmd_retrieve(args: argparse.Namespace) -> int:
    from vesalius.dimse.scu import retrieve

    node = build_node(_settings(args))
    params = {k: v for k, v in (("PatientID", args.patient_id),
                                ("StudyInstanceUID", args.study)) if v}
    report = retrieve(node.settings, node.registry, node.archive, args.from_ae, params,
                      method=args.method, progress=lambda uid: print(f"retrieving {uid}"))
    for line in report.failures:
        print(f"failed: {line}", file=sys.stderr)
    print(f"retrieved {report.completed}, warnings {report.warnings}, failed {report.failed}")
    return 0 if report.failed == 0 and not report.failures else 1


def cmd_import(args: argparse.Namespace) -> int:
    from vesalius.cli.importer import import_paths

    node = build_node(_settings(args))
    summary = import_paths(node.archive, args.paths, progress=not args.quiet)
    for label, reason in summary.rejected:
        print(f"rejected: {label}: {reason}", file=sys.stderr)
    studies = node.link.flush()
    print(f"{summary.line()}; {studies} ImagingStudy resources written")
    return 0 if summary.counts["rejected"] == 0 else 1


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.output:
        from vesalius.demo.synthetic import write_demo

        paths = write_demo(args.output, ct_slices=args.slices or settings.demo_ct_slices)
        print(f"wrote {len(paths)} files to {args.output}")
        return 0
    print("demo:", load_demo(build_node(settings), args.slices or settings.demo_ct_slices))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    archive = build_archive(_settings(args))
    removed = archive.sweep_orphans(older_than_s=args.older_than)
    print(f"removed {removed} unreferenced blob(s)")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    node = build_node(_settings(args))
    print(f"reindexed {node.record.reindex()} FHIR resources")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from vesalius.database.engine import make_engines
    from vesalius.database.write_lock import WriteLock
    from vesalius.security.audit import open_audit_store

    settings = _settings(args)
    reader, writer = make_engines(settings)
    checkpointing = args.audit_command == "checkpoint"
    store = open_audit_store(writer, settings.data_dir, audit_key_file=settings.audit_key_file,
                             checkpoint_every=settings.audit_checkpoint_every,
                             lock=WriteLock(writer), reader=reader, create=checkpointing)
    if checkpointing:
        print(f"checkpoint written to {store.checkpoint()}")
        return 0
    problems = store.verify()
    for problem in problems:
        print(problem)
    head = store.head()
    print(f"{len(problems)} problem(s); head at sequence {head[0] if head else '-'}")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vesalius", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP (DICOMweb) server")
    _common(serve)
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="HTTP port (default 8080)")
    serve.add_argument("--http-workers", type=int,
                       help="HTTP worker processes (default: one per CPU core)")
    serve.add_argument("--dicom-port", type=int, help="DIMSE port (default 11112; 0 = off)")
    serve.add_argument("--dicom-tls-port", type=int, help="DICOM TLS port (default off)")
    serve.add_argument("--ae-title", help="our AE title (default VESALIUS)")
    serve.add_argument("--demo", action="store_true", help="load demo data on first start")
    serve.set_defaults(func=cmd_serve)

    ae = sub.add_parser("ae", help="registry of remote DICOM application entities")
    ae_sub = ae.add_subparsers(dest="ae_command", required=True)
    ae_add = ae_sub.add_parser("add", help="register a remote AE")
    _common(ae_add)
    ae_add.add_argument("title")
    ae_add.add_argument("--host", required=True)
    ae_add.add_argument("--port", type=int, required=True)
    ae_add.add_argument("--tls", action="store_true", help="talk to it over DICOM TLS")
    ae_add.add_argument("--allow", default="", help="comma list of store,find,move,get")
    ae_add.add_argument("--replace", action="store_true", help="overwrite an existing entry")
    ae_list = ae_sub.add_parser("list", help="list remote AEs")
    _common(ae_list)
    ae_remove = ae_sub.add_parser("remove", help="unregister a remote AE")
    _common(ae_remove)
    ae_remove.add_argument("title")
    for p in (ae_add, ae_list, ae_remove):
        p.set_defaults(func=cmd_ae)

    wl = sub.add_parser("worklist", help="scheduled procedure steps (modality worklist)")
    wl_sub = wl.add_subparsers(dest="wl_command", required=True)
    wl_add = wl_sub.add_parser("add", help="schedule a procedure step")
    _common(wl_add)
    wl_add.add_argument("--patient-id", required=True)
    wl_add.add_argument("--patient-name", required=True)
    wl_add.add_argument("--issuer", default="")
    wl_add.add_argument("--birth-date", default="")
    wl_add.add_argument("--sex", default="")
    wl_add.add_argument("--modality", required=True)
    wl_add.add_argument("--date", required=True, help="YYYYMMDD")
    wl_add.add_argument("--time", default="", help="HHMM[SS]")
    wl_add.add_argument("--accession", required=True)
    wl_add.add_argument("--station", default="", help="scheduled station AE title")
    wl_add.add_argument("--description", default="")
    wl_add.add_argument("--procedure", default="", help="requested procedure description")
    wl_list = wl_sub.add_parser("list", help="list scheduled steps")
    _common(wl_list)
    wl_list.add_argument("--all", action="store_true", help="include completed/discontinued")
    for p in (wl_add, wl_list):
        p.set_defaults(func=cmd_worklist)

    ech = sub.add_parser("echo", help="C-ECHO a registered AE")
    _common(ech)
    ech.add_argument("title")
    ech.set_defaults(func=cmd_echo)

    snd = sub.add_parser("send", help="C-STORE a study, series or instance to a registered AE")
    _common(snd)
    snd.add_argument("level", choices=["study", "series", "instance"])
    snd.add_argument("uid")
    snd.add_argument("--to", required=True, help="destination AE title")
    snd.set_defaults(func=cmd_send)

    ret = sub.add_parser("retrieve", help="pull studies from a registered AE (C-FIND + C-GET/MOVE)")
    _common(ret)
    ret.add_argument("--from", dest="from_ae", required=True, help="source AE title")
    ret.add_argument("--patient-id")
    ret.add_argument("--study", help="StudyInstanceUID")
    ret.add_argument("--method", choices=["get", "move"], default="get",
                     help="C-GET (default) or C-MOVE to our own AE (needs vesalius serve)")
    ret.set_defaults(func=cmd_retrieve)

    imp = sub.add_parser("import", help="import DICOM files, folders, zips, DICOMDIRs")
    _common(imp)
    imp.add_argument("paths", nargs="+", type=Path)
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_import)

    demo = sub.add_parser("demo", help="generate (and load) the synthetic demo studies")
    _common(demo)
    demo.add_argument("--output", type=Path, help="write files here instead of loading them")
    demo.add_argument("--slices", type=int, help="slices in the demo CT")
    demo.set_defaults(func=cmd_demo)

    sweep = sub.add_parser("sweep", help="delete blobs that no index row references")
    _common(sweep)
    sweep.add_argument("--older-than", type=float, default=3600.0, help="seconds (default 3600)")
    sweep.set_defaults(func=cmd_sweep)

    reindex = sub.add_parser("reindex", help="rebuild the FHIR search index from the resources")
    _common(reindex)
    reindex.set_defaults(func=cmd_reindex)

    audit = sub.add_parser("audit", help="the tamper-evident audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_verify = audit_sub.add_parser("verify", help="check the audit chain and checkpoints")
    audit_checkpoint = audit_sub.add_parser("checkpoint", help="write a signed checkpoint now")
    for p in (audit_verify, audit_checkpoint):
        _common(p)
        p.set_defaults(func=cmd_audit)
    keys.register(sub)
    accounts.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.func(args)
        return code
    except VesaliusError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
