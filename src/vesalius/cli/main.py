"""The ``vesalius`` command: the second composition root."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from vesalius import __version__
from vesalius.archive.factory import build_archive
from vesalius.archive.service import ArchiveService
from vesalius.config import Settings, load_settings
from vesalius.core.errors import VesaliusError


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="installation directory "
                        "(default $VESALIUS_DATA_DIR or ./data)")
    parser.add_argument("--config", type=Path, help="TOML configuration file "
                        "(default $VESALIUS_CONFIG)")


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return load_settings(args.config, data_dir=args.data_dir, **extra)


def load_demo(archive: ArchiveService, slices: int) -> str:
    """Generate the synthetic demo studies and store them (idempotent)."""
    from vesalius.cli.importer import import_paths
    from vesalius.demo.synthetic import write_demo

    with tempfile.TemporaryDirectory(prefix="vesalius-demo-") as tmp:
        paths = write_demo(Path(tmp), ct_slices=slices)
        summary = import_paths(archive, paths, progress=sys.stderr.isatty())
    return summary.line()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from vesalius.web.app import create_app

    settings = _settings(args, host=args.host, http_port=args.http_port,
                         load_demo=True if args.demo else None)
    archive = build_archive(settings)
    if settings.load_demo and archive.reader.counts()["instances"] == 0:
        print("Loading synthetic demo studies (first start)...", flush=True)
        print("demo:", load_demo(archive, settings.demo_ct_slices), flush=True)
    url = f"http://{settings.host}:{settings.http_port}"
    print(f"Vesalius {__version__} listening on {url}  (DICOMweb: {url}/dicom-web)", flush=True)
    uvicorn.run(create_app(archive), host=settings.host, port=settings.http_port,
                log_level=settings.log_level, access_log=False)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from vesalius.cli.importer import import_paths

    archive = build_archive(_settings(args))
    summary = import_paths(archive, args.paths, progress=not args.quiet)
    for label, reason in summary.rejected:
        print(f"rejected: {label}: {reason}", file=sys.stderr)
    print(summary.line())
    return 0 if summary.counts["rejected"] == 0 else 1


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.output:
        from vesalius.demo.synthetic import write_demo

        paths = write_demo(args.output, ct_slices=args.slices or settings.demo_ct_slices)
        print(f"wrote {len(paths)} files to {args.output}")
        return 0
    archive = build_archive(settings)
    print("demo:", load_demo(archive, args.slices or settings.demo_ct_slices))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    archive = build_archive(_settings(args))
    removed = archive.sweep_orphans(older_than_s=args.older_than)
    print(f"removed {removed} unreferenced blob(s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vesalius", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP (DICOMweb) server")
    _common(serve)
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="HTTP port (default 8080)")
    serve.add_argument("--demo", action="store_true", help="load demo data on first start")
    serve.set_defaults(func=cmd_serve)

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
