"""``vesalius keys``: the key-encryption keys of the encrypted blob store.

- ``rotate``: retire the current KEK, make a new one (random, or ``--new-kek-file``) current
  and rewrap every object's data key under it. Image data is not re-encrypted: each object
  gets a new header and keeps its chunks. Best run while no ``vesalius serve`` is writing;
  objects a running node stores meanwhile are wrapped under the old key, which
  ``vesalius keys rewrap`` (run after restarting the node) catches up.
- ``rewrap``: finish an interrupted rotation (only objects not under the current KEK).
- ``status``: the current and retired KEK ids and how many objects sit under each.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vesalius.archive.storage.encrypted import EncryptedBlobStore
from vesalius.archive.storage.fs import FilesystemBlobStore
from vesalius.config import Settings, load_settings
from vesalius.core.errors import NotFound
from vesalius.security.crypto.keys import FileKeyProvider, kek_path, read_kek_file


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = subparsers.add_parser("keys", help="key-encryption keys of the encrypted blob store")
    sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = sub.add_parser("rotate", help="new key-encryption key; rewrap every data key")
    rotate.add_argument("--new-kek-file", type=Path,
                        help="take the new key from this file (64 hex digits) instead of "
                             "generating one; it is copied to the configured key location")
    rotate.set_defaults(func=cmd_rotate)
    rewrap = sub.add_parser("rewrap", help="rewrap objects still under a retired key")
    rewrap.set_defaults(func=cmd_rewrap)
    status = sub.add_parser("status", help="key ids and how many objects each protects")
    status.set_defaults(func=cmd_status)
    for parser in (rotate, rewrap, status):
        parser.add_argument("--data-dir", type=Path, help="installation directory "
                            "(default $VESALIUS_DATA_DIR or ./data)")
        parser.add_argument("--config", type=Path, help="TOML configuration file "
                            "(default $VESALIUS_CONFIG)")


def _open(args: argparse.Namespace) -> tuple[Settings, FileKeyProvider, EncryptedBlobStore]:
    settings = load_settings(args.config, data_dir=args.data_dir)
    path = kek_path(settings.data_dir, settings.kek_file)
    try:
        provider = FileKeyProvider(path, create=False)
    except NotFound as exc:
        raise NotFound(f"no key-encryption key at {path} yet (the first start with "
                       "encrypt_at_rest creates one)") from exc
    return settings, provider, EncryptedBlobStore(FilesystemBlobStore(settings.blob_dir),
                                                  provider)


def _rewrap(store: EncryptedBlobStore) -> int:
    report = store.rewrap_all()
    for key, reason in report.failed:
        print(f"failed: {key}: {reason}", file=sys.stderr)
    print(report.line())
    return 0 if not report.failed else 1


def cmd_rotate(args: argparse.Namespace) -> int:
    new_secret = read_kek_file(args.new_kek_file) if args.new_kek_file else None
    _, provider, store = _open(args)
    old_id = provider.key_id
    new_id = provider.rotate(new_secret)
    print(f"key-encryption key rotated: {old_id} -> {new_id} (old key kept in "
          f"{provider.retired_dir})")
    return _rewrap(store)


def cmd_rewrap(args: argparse.Namespace) -> int:
    return _rewrap(_open(args)[2])


def cmd_status(args: argparse.Namespace) -> int:
    settings, provider, store = _open(args)
    print(f"current key {provider.key_id} ({provider.path})")
    retired = provider.known_ids()[1:]
    print(f"retired keys: {', '.join(retired) if retired else 'none'}")
    if not settings.encrypt_at_rest:
        print("encrypt_at_rest is off: new objects are stored in plaintext")
    usage = store.key_usage()
    for key_id, count in sorted(usage.items()):
        print(f"  {key_id}: {count} object(s)")
    behind = sum(count for key_id, count in usage.items() if key_id in retired)
    if behind:
        print(f"{behind} object(s) still under retired keys: run `vesalius keys rewrap`")
    return 0
