"""The `storagegw` command line's argument parser."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from storagegw import _cli_auth, _cli_lifecycle
from storagegw import _cli_checks as checks
from storagegw import _cli_commands as handlers
from storagegw._resumable import DEFAULT_PARALLEL_STREAMS, DEFAULT_PARALLEL_THRESHOLD

__all__ = ["build_parser"]


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # Given on the main parser (with defaults) and again on each command
    # (without, so they only override): both `-q ls` and `ls -q` work.
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--target",
        default=default(handlers.default_target()),
        help="gateway host:port (env STORAGEGW_TARGET; default 127.0.0.1:50051)",
    )
    parser.add_argument(
        "--bucket",
        default=default(os.environ.get("STORAGEGW_BUCKET", "")),
        help="bucket (env STORAGEGW_BUCKET; default: the gateway's default bucket)",
    )
    parser.add_argument(
        "--timeout", type=float, default=default(None), help="deadline for each call, in seconds"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default(False), help="no progress output"
    )
    _cli_auth.add_options(parser, default)


def build_parser(epilog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storagegw",
        description="Store and fetch objects through a storagegw gateway.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_global_options(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _add_global_options(common, defaults=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, handler: Callable[..., int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[common])
        sub.set_defaults(handler=handler)
        return sub

    commands.add_parser(
        "cleanup",
        help="one upkeep pass of every configured bucket: stale uploads, lifecycle expiry, "
        "dedup garbage (see --help)",
    )
    serve = commands.add_parser("serve", help="run the gateway (options: storagegw serve --help)")
    serve.add_argument("gateway_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    put = command("put", "upload FILE (- for stdin) as KEY", handlers.run_put)
    put.add_argument("file", metavar="FILE")
    put.add_argument("key", metavar="KEY")
    put.add_argument("--content-type", help="media type (default: guessed from FILE)")
    put.add_argument("-m", "--metadata", action="append", metavar="NAME=VALUE")
    put.add_argument("-n", "--no-clobber", action="store_true", help="fail if KEY exists")
    put.add_argument("--if-none-match", metavar="ETAG", help='"*": fail if KEY exists')
    put.add_argument("--if-match", metavar="ETAG", help="replace only this version")
    put.add_argument("--if-generation-match", type=int, metavar="GEN", help="0: only create")
    put.add_argument(
        "--resume",
        action="store_true",
        help="resumable upload: retried after network failures; prints the upload id",
    )
    put.add_argument(
        "--upload-id", metavar="ID", help="continue this upload from its persisted size"
    )
    put.add_argument(
        "--verify-sha256",
        action="store_true",
        help="also compute the SHA-256 and have the gateway check and store it",
    )

    status = command(
        "upload-status", "show a resumable upload's progress", handlers.run_upload_status
    )
    status.add_argument("upload_id", metavar="UPLOAD_ID")
    status.add_argument("--json", action="store_true", help="print JSON")

    abort = command(
        "upload-abort", "discard an unfinished resumable upload", handlers.run_upload_abort
    )
    abort.add_argument("upload_id", metavar="UPLOAD_ID")

    get = command(
        "get", "download KEY to FILE (- for stdout), checked end to end", handlers.run_get
    )
    get.add_argument("key", metavar="KEY")
    get.add_argument("file", metavar="FILE")
    get.add_argument(
        "--parallel",
        type=_positive,
        default=DEFAULT_PARALLEL_STREAMS,
        metavar="N",
        help=f"ranges read at once for a large object (default {DEFAULT_PARALLEL_STREAMS}; "
        "1: one stream)",
    )
    get.add_argument(
        "--parallel-threshold",
        type=_positive,
        default=DEFAULT_PARALLEL_THRESHOLD,
        metavar="BYTES",
        help=f"read in parallel above this size (default {DEFAULT_PARALLEL_THRESHOLD})",
    )
    get.add_argument(
        "--verify-sha256",
        action="store_true",
        help="also compute the SHA-256 of what arrives and compare the object's (in one stream)",
    )

    ls = command("ls", "list objects whose keys start with PREFIX", handlers.run_ls)
    ls.add_argument("prefix", metavar="PREFIX", nargs="?", default="")
    ls.add_argument("-d", "--delimiter", default="", help='roll keys up at DELIMITER (e.g. "/")')
    ls.add_argument("-l", "--long", action="store_true", help="show size, time, etag, type")

    stat_ = command(
        "stat", "show an object's metadata (no KEY: the bucket's statistics)", handlers.run_stat
    )
    stat_.add_argument("key", metavar="KEY", nargs="?")
    stat_.add_argument("--json", action="store_true", help="print JSON")

    rm = command("rm", "delete an object (-r: and every object under KEY/)", handlers.run_rm)
    rm.add_argument("key", metavar="KEY")
    rm.add_argument("-f", "--force", action="store_true", help="succeed if KEY does not exist")
    rm.add_argument("--if-match", metavar="ETAG", help="delete only this version")
    rm.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="delete KEY and every object under KEY/ (not KEYx), 1,000 keys a call",
    )

    sign = command("sign", "print a signed HTTP URL for KEY", checks.run_sign)
    sign.add_argument("key", metavar="KEY")
    sign.add_argument("--method", type=str.upper, choices=["GET", "PUT", "POST"], default="GET")
    sign.add_argument("--expires", type=float, default=3600, metavar="SECONDS")
    sign.add_argument("--download", action="store_true", help="GET: as an attachment")
    sign.add_argument("--filename", help="GET with --download: the offered file name")
    sign.add_argument("--content-type", help="PUT/POST: the Content-Type the upload must send")
    sign.add_argument("--max-size", type=int, metavar="BYTES", help="PUT/POST: largest object")
    sign.add_argument("--min-size", type=int, metavar="BYTES", help="POST: smallest object")
    sign.add_argument(
        "--route",
        choices=["cdn", "gateway", "store"],
        help="who serves the URL (default: the bucket's CDN for a GET, if it has one)",
    )
    sign.add_argument("--client-ip", metavar="IP", help="CDN URLs: bind the URL to this address")

    finalize = command(
        "finalize",
        "check and publish a direct upload (the pending upload `sign` printed)",
        checks.run_finalize,
    )
    finalize.add_argument("pending_upload", metavar="PENDING")
    finalize.add_argument("-n", "--no-clobber", action="store_true", help="fail if KEY exists")

    scan = command(
        "scan",
        "scan the objects under PREFIX of BUCKET again (quarantine new finds)",
        checks.run_scan,
    )
    scan.add_argument("scan_bucket", metavar="BUCKET")
    scan.add_argument("prefix", metavar="PREFIX", nargs="?", default="")
    scan.add_argument("--page-size", type=_positive, metavar="N", help="objects per call")

    lifecycle = command(
        "lifecycle",
        "show: the bucket's lifecycle rules and what enforces each (apply: on the "
        "gateway's side, install them in the stores)",
        _cli_lifecycle.run_lifecycle_show,
    )
    lifecycle.add_argument("action", choices=["show"])

    cp = command(
        "cp", "copy SRC to DST, each [BUCKET:]KEY (:KEY for a key with a colon)", handlers.run_cp
    )
    cp.add_argument("src", metavar="SRC")
    cp.add_argument("dst", metavar="DST")
    cp.add_argument("--content-type", help="replace the type (and metadata) of the copy")
    cp.add_argument("-m", "--metadata", action="append", metavar="NAME=VALUE")
    cp.add_argument("-n", "--no-clobber", action="store_true", help="fail if DST exists")
    return parser


def _positive(text: str) -> int:
    """An integer of 1 or more (argparse reports anything else as a usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
