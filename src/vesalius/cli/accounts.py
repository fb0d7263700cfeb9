"""``vesalius user``, ``vesalius client`` and ``vesalius token``: accounts from the shell.

Every change made here is audited as the operating-system user who ran the command
(``system:cli:<login>``), as a DICOM Security Alert (110113) with subtype "Use of Restricted
Function" (110132): account and client changes, and bearer tokens issued by hand.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vesalius.config import load_settings
from vesalius.core.errors import InvalidInput
from vesalius.database.engine import make_engines
from vesalius.node import build_auditor
from vesalius.security.authn import AuthService, Unauthenticated
from vesalius.security.principal import ROLES, SYSTEM, Principal


def _operator() -> Principal:
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        login = "unknown"
    return Principal(kind=SYSTEM, id=f"cli:{login}", name=login)


@contextmanager
def _service(args: argparse.Namespace) -> Iterator[AuthService]:
    settings = load_settings(args.config, data_dir=args.data_dir)
    reader, writer = make_engines(settings)
    auditor = build_auditor(settings, reader, writer)
    auth = AuthService(writer, settings, auditor)
    auth.create()
    try:
        yield auth
    finally:
        auditor.stop()


def cmd_user(args: argparse.Namespace) -> int:
    by = _operator()
    with _service(args) as auth:
        if args.user_command == "add":
            password = None
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\r\n")
            generated = auth.add_user(args.name, args.role, password=password,
                                      practitioner=args.practitioner, patient=args.patient,
                                      organization=args.organization, name=args.display_name,
                                      by=by)
            print(f"added user {args.name} ({', '.join(sorted(set(args.role)))})")
            if password is None:
                print(f"password: {generated}")
        elif args.user_command == "disable":
            auth.disable_user(args.name, by=by)
            print(f"disabled {args.name}")
        elif args.user_command == "enable":
            auth.enable_user(args.name, by=by)
            print(f"enabled {args.name}")
        elif args.user_command == "reset-mfa":
            auth.reset_mfa(args.name, by=by)
            print(f"second factor of {args.name} reset; they enrol again at next sign-in")
        else:
            for user in auth.users():
                roles = user["roles"]
                assert isinstance(roles, list)
                print(f"{user['username']:20} {','.join(roles):28} "
                      f"{'disabled' if user['disabled'] else 'enabled':8} "
                      f"mfa={'yes' if user['mfa'] else 'no':3} {user['name']}")
    return 0


def cmd_client(args: argparse.Namespace) -> int:
    jwks: dict[str, Any] | None = None
    if args.jwks is not None:
        try:
            jwks = json.loads(Path(args.jwks).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read the JWKS file {args.jwks}: {exc}") from exc
    with _service(args) as auth:
        secret = auth.add_client(args.client_id, name=args.display_name, public=args.public,
                                 redirect_uris=args.redirect_uri, scopes=args.scope,
                                 roles=args.role, jwks=jwks, by=_operator())
        client = auth.client(args.client_id)
        print(f"added client {client.client_id} ({client.auth_method}; grants "
              f"{', '.join(sorted(client.grant_types))})")
        if secret is not None:
            print(f"secret: {secret}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    with _service(args) as auth:
        try:
            if args.user is not None:
                token = auth.issue_token(args.user, args.ttl, args.scope)
                what = f"user {args.user}"
            else:
                client = auth.client(args.client)
                token = auth.client_credentials(client, args.scope, ttl=args.ttl).access_token
                what = f"client {args.client}"
        except Unauthenticated as exc:
            raise InvalidInput(exc.reason) from exc
        auth.audit_restricted(_operator(), "E",
                              f"bearer token issued for {what}, {args.ttl} s")
        print(token)
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="installation directory "
                        "(default $VESALIUS_DATA_DIR or ./data)")
    parser.add_argument("--config", type=Path, help="TOML configuration file "
                        "(default $VESALIUS_CONFIG)")


def register(sub: Any) -> None:
    """Add the ``user``, ``client`` and ``token`` commands to the main parser's subparsers."""
    user = sub.add_parser("user", help="local accounts of the built-in sign-in")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create an account (prints a generated password)")
    add.add_argument("name")
    add.add_argument("--role", action="append", required=True, choices=ROLES,
                     help="a role (repeat for several)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input")
    add.add_argument("--practitioner", help="FHIR Practitioner id of a clinical user")
    add.add_argument("--patient", help="FHIR Patient id of a patient user")
    add.add_argument("--organization", help="FHIR Organization id the user works for")
    add.add_argument("--name", dest="display_name", default="", help="display name")
    parsers = [add]
    for command, text in (("disable", "refuse the account's sign-ins and tokens"),
                          ("enable", "allow a disabled account again"),
                          ("reset-mfa", "forget the account's TOTP authenticator")):
        p = user_sub.add_parser(command, help=text)
        p.add_argument("name")
        parsers.append(p)
    parsers.append(user_sub.add_parser("list", help="list accounts (no secrets)"))
    for p in parsers:
        _common(p)
        p.set_defaults(func=cmd_user)

    client = sub.add_parser("client", help="OAuth clients (SMART apps, backend services)")
    client_sub = client.add_subparsers(dest="client_command", required=True)
    cadd = client_sub.add_parser("add", help="register a client (prints a generated secret)")
    _common(cadd)
    cadd.add_argument("client_id")
    cadd.add_argument("--name", dest="display_name", default="")
    cadd.add_argument("--public", action="store_true", help="no secret (browser/native app)")
    cadd.add_argument("--redirect-uri", action="append", default=[])
    cadd.add_argument("--scope", action="append", default=[], help="an allowed scope")
    cadd.add_argument("--role", action="append", default=[], choices=ROLES,
                      help="a role of the client itself (client credentials)")
    cadd.add_argument("--jwks", type=Path, help="JWKS file of the client's public keys "
                      "(private_key_jwt)")
    cadd.set_defaults(func=cmd_client)

    token = sub.add_parser("token", help="bearer tokens for scripts")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    issue = token_sub.add_parser("issue", help="print an access token")
    _common(issue)
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--user")
    who.add_argument("--client")
    issue.add_argument("--ttl", type=int, required=True, help="lifetime in seconds")
    issue.add_argument("--scope", action="append", default=[])
    issue.set_defaults(func=cmd_token)
