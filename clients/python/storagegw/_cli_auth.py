"""The `storagegw` command's TLS and token options, and what it says when refused.

A token given with --token is visible to other users of the machine (ps,
/proc); STORAGEGW_TOKEN or --token-file keep it out of the command line.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from storagegw._credentials import TlsConfig
from storagegw.errors import CredentialsMissing, StorageError

__all__ = ["add_options", "refusal_hint", "tls_config", "token"]


def add_options(parser: argparse.ArgumentParser, default: Callable[[object], object]) -> None:
    """The options, on the main parser and each command (see _cli_parser)."""
    env = os.environ
    parser.add_argument(
        "--tls",
        action="store_true",
        default=default(env.get("STORAGEGW_TLS", "").lower() in ("1", "true", "yes", "on")),
        help="connect with TLS, the gateway checked against the system's roots "
        "(env STORAGEGW_TLS=1; implied by --tls-ca and --cert)",
    )
    parser.add_argument(
        "--tls-ca",
        metavar="PEM",
        default=default(env.get("STORAGEGW_TLS_CA")),
        help="TLS, the gateway's certificate checked against these roots (env STORAGEGW_TLS_CA)",
    )
    parser.add_argument(
        "--cert",
        dest="tls_cert",
        metavar="PEM",
        default=default(env.get("STORAGEGW_CERT")),
        help="client certificate for mutual TLS (env STORAGEGW_CERT)",
    )
    parser.add_argument(
        "--key",
        dest="tls_key",  # `key` is the commands' object key
        metavar="PEM",
        default=default(env.get("STORAGEGW_KEY")),
        help="private key of --cert (env STORAGEGW_KEY)",
    )
    parser.add_argument(
        "--token",
        default=default(None),
        help="bearer token; other users can see it in ps: prefer $STORAGEGW_TOKEN or --token-file",
    )
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        default=default(None),
        help="read the bearer token from FILE",
    )


def tls_config(args: argparse.Namespace) -> TlsConfig | None:
    """TLS when any TLS option is given; plaintext otherwise."""
    if not (args.tls or args.tls_ca or args.tls_cert or args.tls_key):
        return None
    return TlsConfig(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key)


def token(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> str | None:
    """--token, else the contents of --token-file, else $STORAGEGW_TOKEN."""
    if args.token:
        return str(args.token)
    if args.token_file:
        text = Path(args.token_file).read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"the token file {args.token_file} is empty")
        return text
    value = (os.environ if env is None else env).get("STORAGEGW_TOKEN", "").strip()
    return value or None


def refusal_hint(error: StorageError) -> str:
    """What to try when the gateway asked for credentials none were given for."""
    if isinstance(error, CredentialsMissing):
        return ": give a token ($STORAGEGW_TOKEN or --token-file) or a certificate (--cert/--key)"
    return ""
