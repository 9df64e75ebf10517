"""The `storagegw` command: run the gateway or use one from the shell.

    storagegw serve [GATEWAY OPTIONS]
    storagegw cleanup [--older-than 7d]  (aborts stale S3 multipart uploads)
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
import heapq
import importlib
import json
import os
import re
import shlex
import stat
import sys
from collections.abc import Callable, Sequence
from typing import BinaryIO

from storagegw._progress import ProgressBar
from storagegw._retry import is_transient
from storagegw._types import ObjectInfo, UploadSession
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

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_PRECONDITION = 4
EXIT_DATA_INTEGRITY = 5
EXIT_INVALID = 6
EXIT_UNAVAILABLE = 7
EXIT_PERMISSION = 8

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
# A bucket name before the colon in "bucket:key"; anything else is all key.
_BUCKET_PREFIX = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*):(.+)$", re.DOTALL)


def exit_code_for(error: StorageError) -> int:
    for classes, code in _EXIT_CODES:
        if isinstance(error, classes):
            return code
    return EXIT_ERROR


def _error(message: str) -> None:
    print(f"storagegw: error: {message}", file=sys.stderr)


def _show_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _progress_bar(args: argparse.Namespace, label: str, total: int | None) -> ProgressBar | None:
    return ProgressBar(label, total, sys.stderr) if _show_progress(args) else None


def _location(text: str, default_bucket: str) -> tuple[str, str]:
    """Split "bucket:key"; a leading ":" or a non-bucket prefix keeps it all key."""
    if text.startswith(":"):
        return default_bucket, text[1:]
    match = _BUCKET_PREFIX.match(text)
    if match:
        return match.group(1), match.group(2)
    return default_bucket, text


def _metadata(pairs: Sequence[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    result = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"metadata must be NAME=VALUE, not {pair!r}")
        result[name] = value
    return result


def _stdin_size(stream: BinaryIO) -> int | None:
    """The bytes left on stdin when it is a regular file (for the progress bar)."""
    try:
        status = os.fstat(stream.fileno())
        return status.st_size - stream.tell() if stat.S_ISREG(status.st_mode) else None
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- commands


def _put_resumable(client: Client, args: argparse.Namespace) -> int:
    if args.file == "-":
        raise ValueError("a resumable upload needs a FILE, not stdin")
    bar = _progress_bar(args, args.key, os.stat(args.file).st_size)
    started: list[str] = []

    def announce(session: UploadSession) -> None:
        started.append(session.upload_id)
        print(f"upload id: {session.upload_id}", file=sys.stderr, flush=True)

    try:
        if args.upload_id:
            info = client.resume_upload(
                args.upload_id, args.file, progress=bar.update if bar else None
            )
        else:
            info = client.put_file(
                args.key,
                args.file,
                resumable=True,
                keep_upload=True,  # an interrupted upload can be continued
                on_upload_start=announce,
                content_type=args.content_type,
                metadata=_metadata(args.metadata),
                progress=bar.update if bar else None,
                if_none_match="*" if args.no_clobber else args.if_none_match,
                if_match=args.if_match,
                if_generation_match=args.if_generation_match,
            )
    except StorageError as err:
        if bar:
            bar.stop()
        upload_id = args.upload_id or (started[0] if started else None)
        if upload_id and not is_transient(err):
            client.abort_upload(upload_id)  # resuming cannot help: drop it
        elif upload_id:
            print(_resume_hint(args, upload_id), file=sys.stderr, flush=True)
        raise
    except KeyboardInterrupt:
        if bar:
            bar.stop()  # gRPC's sending thread may still report progress
        if upload_id := args.upload_id or (started[0] if started else None):
            print(_resume_hint(args, upload_id), file=sys.stderr, flush=True)
        raise
    finally:
        if bar:
            bar.finish()
    if _show_progress(args):
        print(
            f"stored {info.key} ({info.size} bytes, generation {info.generation})", file=sys.stderr
        )
    return EXIT_OK


def _resume_hint(args: argparse.Namespace, upload_id: str) -> str:
    """The command that continues this upload, ready to paste into a shell."""
    words = ["storagegw"]
    if args.target != _default_target():
        words += ["--target", args.target]
    words += ["put", "--upload-id", upload_id, args.file, args.key]
    return "resume with: " + shlex.join(words)


def _print_fields(fields: dict[str, object], prefix: str = "") -> None:
    """`name: value` lines; fields without a value (None, "") are left out."""
    for name, value in fields.items():
        if name != "metadata" and value not in (None, ""):
            print(f"{prefix}{name}: {value}")


def _upload_status(client: Client, args: argparse.Namespace) -> int:
    status = client.query_upload(args.upload_id)
    fields = status.to_dict()
    if args.json:
        print(json.dumps(fields, indent=2, sort_keys=True))
        return EXIT_OK
    print(f"persisted_size: {status.persisted_size}")
    print(f"complete: {'yes' if status.complete else 'no'}")
    if fields["expire_time"]:
        print(f"expire_time: {fields['expire_time']}")
    if status.object is not None:
        _print_fields(status.object.to_dict(), "object.")
    return EXIT_OK


def _upload_abort(client: Client, args: argparse.Namespace) -> int:
    if not client.abort_upload(args.upload_id):
        _error(f"upload {args.upload_id!r} not found (UPLOAD_NOT_FOUND)")
        return EXIT_NOT_FOUND
    return EXIT_OK


def _put(client: Client, args: argparse.Namespace) -> int:
    if args.resume or args.upload_id:
        return _put_resumable(client, args)
    source: str | BinaryIO
    if args.file == "-":
        source = sys.stdin.buffer
        total = _stdin_size(source)
    else:
        source = args.file
        total = os.stat(args.file).st_size
    bar = _progress_bar(args, args.key, total)
    try:
        info = client.put_file(
            args.key,
            source,
            content_type=args.content_type,
            metadata=_metadata(args.metadata),
            progress=bar.update if bar else None,
            if_none_match="*" if args.no_clobber else args.if_none_match,
            if_match=args.if_match,
            if_generation_match=args.if_generation_match,
        )
    finally:
        if bar:
            bar.finish()
    if _show_progress(args):
        print(
            f"stored {info.key} ({info.size} bytes, generation {info.generation})", file=sys.stderr
        )
    return EXIT_OK


def _get(client: Client, args: argparse.Namespace) -> int:
    if args.file == "-":
        out = sys.stdout.buffer
        with client.open(args.key) as reader:
            bar = _progress_bar(args, args.key, reader.content_range.length)
            written = 0
            try:
                for chunk in reader:
                    out.write(chunk)
                    written += len(chunk)
                    if bar:
                        bar.update(written)
            finally:
                if bar:
                    bar.finish()
        out.flush()
        return EXIT_OK
    dest = args.file
    if os.path.isdir(dest):
        name = args.key.rstrip("/").rsplit("/", 1)[-1]
        dest = os.path.join(dest, name)
    # Only for the bar's percentage; the download itself needs no head().
    bar = _progress_bar(
        args, args.key, client.head(args.key).size if _show_progress(args) else None
    )
    try:
        client.download_file(args.key, dest, progress=bar.update if bar else None)
    finally:
        if bar:
            bar.finish()
    return EXIT_OK


def _format_time(info: ObjectInfo) -> str:
    when = info.update_time or info.create_time
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else "-" * 19


def _ls(client: Client, args: argparse.Namespace) -> int:
    for page in client.list_pages(args.prefix, delimiter=args.delimiter):
        # Prefixes and objects come in separate sorted lists; show one sorted list.
        entries = heapq.merge(
            ((p, None) for p in page.prefixes),
            ((o.key, o) for o in page.objects),
            key=lambda entry: entry[0],
        )
        for name, info in entries:
            if info is None:
                print(f"PRE {name}")
            elif args.long:
                print(
                    f"{info.size:>12}  {_format_time(info)}  {info.etag}  "
                    f"{info.content_type}  {info.key}"
                )
            else:
                print(info.key)
    return EXIT_OK


def _stat(client: Client, args: argparse.Namespace) -> int:
    info = client.head(args.key)
    fields = info.to_dict()
    if args.json:
        print(json.dumps(fields, indent=2, sort_keys=True))
        return EXIT_OK
    _print_fields(fields)
    for name, value in sorted(info.metadata.items()):
        print(f"metadata.{name}: {value}")
    return EXIT_OK


def _rm(client: Client, args: argparse.Namespace) -> int:
    existed = client.delete(args.key, if_match=args.if_match)
    if not existed and not args.force:
        _error(f"object {args.key!r} not found (OBJECT_NOT_FOUND)")
        return EXIT_NOT_FOUND
    return EXIT_OK


def _sign(client: Client, args: argparse.Namespace) -> int:
    signed = client.sign_url(
        args.key,
        method=args.method,
        expires_in=args.expires,
        download=args.download,
        filename=args.filename,
        content_type=args.content_type,
        max_size=args.max_size,
        min_size=args.min_size,
    )
    print(signed.url)
    for name, value in sorted(signed.headers.items()):
        print(f"{name}: {value}", file=sys.stderr)
    if signed.method == "POST":
        # Ready to paste: curl sends fields in order, the file last
        # (--form-string: values are literal, never @file or <file).
        words = ["curl"]
        for name, value in signed.form_fields.items():
            words += ["--form-string", shlex.quote(f"{name}={value}")]
        words += ["-F", "file=@FILE", shlex.quote(signed.url)]
        print(" ".join(words), file=sys.stderr)
    return EXIT_OK


def _cp(client: Client, args: argparse.Namespace) -> int:
    src_bucket, src_key = _location(args.src, client.bucket)
    dst_bucket, dst_key = _location(args.dst, client.bucket)
    client.copy(
        src_key,
        dst_key,
        src_bucket=src_bucket,
        dst_bucket=dst_bucket,
        metadata=_metadata(args.metadata),
        content_type=args.content_type,
        if_none_match="*" if args.no_clobber else None,
    )
    return EXIT_OK


def _serve(gateway_args: list[str], module: str = "gateway.__main__") -> int:
    """Run a gateway-side command (serve, cleanup): imported only here, so the
    client needs none of the gateway's dependencies."""
    try:
        gateway_main = importlib.import_module(module).main
    except ModuleNotFoundError as err:
        if err.name not in ("gateway", module):
            raise
        _error("the gateway is not installed here (pip install storagegw)")
        return EXIT_ERROR
    result: int = gateway_main(gateway_args)
    return result


# ---------------------------------------------------------------- parsing


def _default_target() -> str:
    return os.environ.get("STORAGEGW_TARGET", "127.0.0.1:50051")


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # Given on the main parser (with defaults) and again on each command
    # (without, so they only override): both `-q ls` and `ls -q` work.
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--target",
        default=default(_default_target()),
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storagegw",
        description="Store and fetch objects through a storagegw gateway.",
        epilog=_EPILOG,
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
        help="abort stale incomplete uploads in every configured bucket (see --help)",
    )
    serve = commands.add_parser("serve", help="run the gateway (options: storagegw serve --help)")
    serve.add_argument("gateway_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    put = command("put", "upload FILE (- for stdin) as KEY", _put)
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

    status = command("upload-status", "show a resumable upload's progress", _upload_status)
    status.add_argument("upload_id", metavar="UPLOAD_ID")
    status.add_argument("--json", action="store_true", help="print JSON")

    abort = command("upload-abort", "discard an unfinished resumable upload", _upload_abort)
    abort.add_argument("upload_id", metavar="UPLOAD_ID")

    get = command("get", "download KEY to FILE (- for stdout), checked end to end", _get)
    get.add_argument("key", metavar="KEY")
    get.add_argument("file", metavar="FILE")

    ls = command("ls", "list objects whose keys start with PREFIX", _ls)
    ls.add_argument("prefix", metavar="PREFIX", nargs="?", default="")
    ls.add_argument("-d", "--delimiter", default="", help='roll keys up at DELIMITER (e.g. "/")')
    ls.add_argument("-l", "--long", action="store_true", help="show size, time, etag, type")

    stat_ = command("stat", "show an object's metadata", _stat)
    stat_.add_argument("key", metavar="KEY")
    stat_.add_argument("--json", action="store_true", help="print JSON")

    rm = command("rm", "delete an object", _rm)
    rm.add_argument("key", metavar="KEY")
    rm.add_argument("-f", "--force", action="store_true", help="succeed if KEY does not exist")
    rm.add_argument("--if-match", metavar="ETAG", help="delete only this version")

    sign = command("sign", "print a signed HTTP URL for KEY", _sign)
    sign.add_argument("key", metavar="KEY")
    sign.add_argument("--method", type=str.upper, choices=["GET", "PUT", "POST"], default="GET")
    sign.add_argument("--expires", type=float, default=3600, metavar="SECONDS")
    sign.add_argument("--download", action="store_true", help="GET: as an attachment")
    sign.add_argument("--filename", help="GET with --download: the offered file name")
    sign.add_argument("--content-type", help="PUT/POST: the Content-Type the upload must send")
    sign.add_argument("--max-size", type=int, metavar="BYTES", help="PUT/POST: largest object")
    sign.add_argument("--min-size", type=int, metavar="BYTES", help="POST: smallest object")

    cp = command("cp", "copy SRC to DST, each [BUCKET:]KEY (:KEY for a key with a colon)", _cp)
    cp.add_argument("src", metavar="SRC")
    cp.add_argument("dst", metavar="DST")
    cp.add_argument("--content-type", help="replace the type (and metadata) of the copy")
    cp.add_argument("-m", "--metadata", action="append", metavar="NAME=VALUE")
    cp.add_argument("-n", "--no-clobber", action="store_true", help="fail if DST exists")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["serve"]:
        return _serve(arguments[1:])  # the gateway parses its own options, --help too
    if arguments[:1] == ["cleanup"]:
        return _serve(arguments[1:], "gateway.cleanup")
    parser = build_parser()
    args, unknown = parser.parse_known_args(arguments)
    if args.command == "serve":
        return _serve(args.gateway_args + unknown)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        with Client(args.target, bucket=args.bucket, timeout=args.timeout) as client:
            result: int = args.handler(client, args)
            return result
    except StorageError as err:
        _error(f"{err.message} ({err.reason or err.code.name})")
        return exit_code_for(err)
    except ValueError as err:
        _error(str(err))
        return EXIT_INVALID
    except OSError as err:
        if isinstance(err, BrokenPipeError):
            # The reader went away (`storagegw get k - | head`): not our error.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_ERROR
        _error(str(err))
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
