"""The `storagegw` command: run the gateway or use one from the shell.

    storagegw serve [GATEWAY OPTIONS]
    storagegw cleanup [--older-than 7d] [--only uploads|lifecycle|dedup] [--dry-run]
                                      (one upkeep pass: stale uploads aborted,
                                       lifecycle expiry, dedup garbage collected)
    storagegw put FILE KEY            (FILE - reads stdin)
    storagegw put --resume FILE KEY   (resumable, retried; prints the upload id)
    storagegw put --upload-id ID FILE KEY   (continue that upload)
    storagegw upload-status UPLOAD_ID [--json]
    storagegw upload-abort UPLOAD_ID
    storagegw get KEY FILE            (FILE - writes stdout; FILE a directory:
                                       saved there under the key's last part)
    storagegw ls [PREFIX] [-d /] [-l]
    storagegw stat KEY [--json]
    storagegw rm KEY
    storagegw rm -r PREFIX            (PREFIX and everything under PREFIX/)
    storagegw sign KEY [--method PUT|POST] [--expires SECONDS]
    storagegw cp SRC DST              ([BUCKET:]KEY each)

Downloads to a file appear only once fully verified. With FILE - the data
is streamed as it arrives, so a failed final check (exit 5) comes after the
bytes were written.

Exit codes:
    0  success
    1  any other error
    2  usage error
    3  not found (object or bucket)
    4  precondition failed (including not modified and key conflicts)
    5  data integrity: checksum or size mismatch
    6  invalid argument or key
    7  gateway unavailable or deadline exceeded
    8  permission denied or unauthenticated
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from storagegw import _cli_auth, _cli_parser
from storagegw._cli_commands import (
    EXIT_DATA_INTEGRITY,
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_OK,  # noqa: F401  # cli.EXIT_* name every exit code, as they always have
    EXIT_PERMISSION,
    EXIT_PRECONDITION,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,  # noqa: F401
    error,
)
from storagegw._tracing import continued
from storagegw.client import Client
from storagegw.errors import (
    DataLoss,
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    StorageError,
    Unauthenticated,
    Unavailable,
)

__all__ = ["build_parser", "exit_code_for", "main"]

_EXIT_CODES: tuple[tuple[tuple[type[StorageError], ...], int], ...] = (
    ((NotFound,), EXIT_NOT_FOUND),
    ((PreconditionFailed,), EXIT_PRECONDITION),
    ((DataLoss,), EXIT_DATA_INTEGRITY),
    ((InvalidArgument,), EXIT_INVALID),
    ((Unavailable, DeadlineExceeded), EXIT_UNAVAILABLE),
    ((PermissionDenied, Unauthenticated), EXIT_PERMISSION),
)

# One list of exit codes, in the module docstring (gone under python -OO).
_EPILOG = "exit codes:\n" + (__doc__ or "").partition("Exit codes:\n")[2]


def exit_code_for(error: StorageError) -> int:
    for classes, code in _EXIT_CODES:
        if isinstance(error, classes):
            return code
    return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    return _cli_parser.build_parser(_EPILOG)


def _serve(gateway_args: list[str], module: str = "gateway.__main__") -> int:
    """Run a gateway-side command (serve, cleanup): imported only here, so the
    client needs none of the gateway's dependencies."""
    try:
        gateway_main = importlib.import_module(module).main
    except ModuleNotFoundError as err:
        if err.name not in ("gateway", module):
            raise
        error("the gateway is not installed here (pip install storagegw)")
        return EXIT_ERROR
    result: int = gateway_main(gateway_args)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["serve"]:
        return _serve(arguments[1:])  # the gateway parses its own options, --help too
    if arguments[:1] == ["cleanup"]:
        return _serve(arguments[1:], "gateway.upkeep")
    if arguments[:2] == ["lifecycle", "apply"]:
        return _serve(arguments[1:], "gateway.lifecycle")
    parser = build_parser()
    args, unknown = parser.parse_known_args(arguments)
    if args.command == "serve":
        return _serve(args.gateway_args + unknown)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        # TRACEPARENT (as otel-cli and CI systems set it): the calls join that trace.
        with (
            continued(os.environ.get("TRACEPARENT")),
            Client(
                args.target,
                bucket=args.bucket,
                timeout=args.timeout,
                tls=_cli_auth.tls_config(args),
                token=_cli_auth.token(args),
            ) as client,
        ):
            result: int = args.handler(client, args)
            return result
    except StorageError as err:
        error(f"{err.message} ({err.reason or err.code.name}){_cli_auth.refusal_hint(err)}")
        return exit_code_for(err)
    except ValueError as err:
        error(str(err))
        return EXIT_INVALID
    except OSError as err:
        if isinstance(err, BrokenPipeError):
            # The reader went away (`storagegw get k - | head`): not our error.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_ERROR
        error(str(err))
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
