"""The commands of the `storagegw` command line, one function each.

Each takes the connected Client and the parsed arguments and returns the
exit code; errors are raised (cli.main turns them into messages and codes).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import re
import shlex
import stat
import sys
from collections.abc import Callable, Sequence
from typing import BinaryIO

from storagegw._cli_stdin import stdin_source
from storagegw._common import BinaryReader
from storagegw._progress import ProgressBar
from storagegw._retry import is_transient
from storagegw._types import ObjectInfo, UploadSession
from storagegw.client import Client
from storagegw.errors import StorageError

__all__ = [
    "default_target",
    "error",
    "run_cp",
    "run_get",
    "run_ls",
    "run_put",
    "run_rm",
    "run_stat",
    "run_upload_abort",
    "run_upload_status",
]

# The exit codes, as listed in the docstring of storagegw.cli.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_PRECONDITION = 4
EXIT_DATA_INTEGRITY = 5
EXIT_INVALID = 6
EXIT_UNAVAILABLE = 7
EXIT_PERMISSION = 8

# A bucket name before the colon in "bucket:key"; anything else is all key.
_BUCKET_PREFIX = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*):(.+)$", re.DOTALL)


def error(message: str) -> None:
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
                args.upload_id,
                args.file,
                progress=bar.update if bar else None,
                verify_sha256=args.verify_sha256 or None,
            )
        else:
            info = _put_file(client, args, args.file, bar, announce)
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
    return _stored(args, info)


def _put_file(
    client: Client,
    args: argparse.Namespace,
    source: str | BinaryReader,
    bar: ProgressBar | None,
    announce: Callable[[UploadSession], None] | None = None,
) -> ObjectInfo:
    """put_file with the command's options; given `announce`, resumably,
    keeping the upload when interrupted so that it can be continued."""
    return client.put_file(
        args.key,
        source,
        content_type=args.content_type,
        metadata=_metadata(args.metadata),
        progress=bar.update if bar else None,
        if_none_match="*" if args.no_clobber else args.if_none_match,
        if_match=args.if_match,
        if_generation_match=args.if_generation_match,
        resumable=True if announce is not None else None,
        keep_upload=announce is not None,
        on_upload_start=announce,
        verify_sha256=args.verify_sha256 or None,
    )


def _stored(args: argparse.Namespace, info: ObjectInfo) -> int:
    if _show_progress(args):
        print(
            f"stored {info.key} ({info.size} bytes, generation {info.generation})", file=sys.stderr
        )
    return EXIT_OK


def _resume_hint(args: argparse.Namespace, upload_id: str) -> str:
    """The command that continues this upload, ready to paste into a shell."""
    words = ["storagegw"]
    if args.target != default_target():
        words += ["--target", args.target]
    words += ["put", "--upload-id", upload_id, args.file, args.key]
    return "resume with: " + shlex.join(words)


def _print_fields(fields: dict[str, object], prefix: str = "") -> None:
    """`name: value` lines; fields without a value (None, "") are left out."""
    for name, value in fields.items():
        if name != "metadata" and value not in (None, ""):
            print(f"{prefix}{name}: {value}")


def _print_json(fields: dict[str, object]) -> int:
    print(json.dumps(fields, indent=2, sort_keys=True))
    return EXIT_OK


def run_upload_status(client: Client, args: argparse.Namespace) -> int:
    status = client.query_upload(args.upload_id)
    fields = status.to_dict()
    if args.json:
        return _print_json(fields)
    print(f"persisted_size: {status.persisted_size}")
    print(f"complete: {'yes' if status.complete else 'no'}")
    if fields["expire_time"]:
        print(f"expire_time: {fields['expire_time']}")
    if status.object is not None:
        _print_fields(status.object.to_dict(), "object.")
    return EXIT_OK


def run_upload_abort(client: Client, args: argparse.Namespace) -> int:
    if not client.abort_upload(args.upload_id):
        error(f"upload {args.upload_id!r} not found (UPLOAD_NOT_FOUND)")
        return EXIT_NOT_FOUND
    return EXIT_OK


def run_put(client: Client, args: argparse.Namespace) -> int:
    if args.resume or args.upload_id:
        return _put_resumable(client, args)
    if args.file != "-":
        return _put_plain(client, args, args.file, os.stat(args.file).st_size)
    # Once the upload is over, however it ended, no thread may still be
    # reading stdin (see _cli_stdin): the source is closed before returning.
    with stdin_source(sys.stdin.buffer) as source:
        return _put_plain(client, args, source, _stdin_size(sys.stdin.buffer))


def _put_plain(
    client: Client, args: argparse.Namespace, source: str | BinaryReader, total: int | None
) -> int:
    bar = _progress_bar(args, args.key, total)
    try:
        info = _put_file(client, args, source, bar)
    finally:
        if bar:
            bar.finish()
    return _stored(args, info)


def run_get(client: Client, args: argparse.Namespace) -> int:
    if args.file == "-":
        out = sys.stdout.buffer
        with client.open(args.key, verify_sha256=args.verify_sha256 or None) as reader:
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
        client.download_file(
            args.key,
            dest,
            progress=bar.update if bar else None,
            parallel=args.parallel,
            parallel_threshold=args.parallel_threshold,
            verify_sha256=args.verify_sha256 or None,
        )
    finally:
        if bar:
            bar.finish()
    return EXIT_OK


def _format_time(info: ObjectInfo) -> str:
    when = info.update_time or info.create_time
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else "-" * 19


def run_ls(client: Client, args: argparse.Namespace) -> int:
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


def run_stat(client: Client, args: argparse.Namespace) -> int:
    if args.key is None:
        stats = client.bucket_stats()
        if args.json:
            return _print_json(stats.to_dict())
        _print_fields(stats.to_dict())
        return EXIT_OK
    info = client.head(args.key)
    if args.json:
        return _print_json(info.to_dict())
    _print_fields(info.to_dict())
    for name, value in sorted(info.metadata.items()):
        print(f"metadata.{name}: {value}")
    return EXIT_OK


def run_rm(client: Client, args: argparse.Namespace) -> int:
    if args.recursive:
        return _remove_tree(client, args)
    existed = client.delete(args.key, if_match=args.if_match)
    if not existed and not args.force:
        error(f"object {args.key!r} not found (OBJECT_NOT_FOUND)")
        return EXIT_NOT_FOUND
    return EXIT_OK


def _remove_tree(client: Client, args: argparse.Namespace) -> int:
    """rm -r: the object KEY and every object under KEY/ (never "KEYx"), each
    listed page deleted by one delete_many; a key that could not be deleted
    is named, and the command then fails as its error says."""
    if args.if_match is not None:
        raise ValueError("rm -r deletes many objects: --if-match names one version of one")
    top = args.key.rstrip("/")
    if not top:
        raise ValueError("rm -r needs a non-empty PREFIX (it would delete the whole bucket)")
    results = client.delete_many([top]) if top == args.key else []
    for page in client.list_pages(top + "/"):
        results += client.delete_many([info.key for info in page.objects])
    failed = [result for result in results if result.error is not None]
    for result in failed:
        assert result.error is not None
        error(f"{result.key!r} not deleted: {result.error} ({result.error.reason})")
    if failed:
        first = failed[0].error
        assert first is not None
        raise type(first)(
            f"{len(failed)} of {len(results)} keys not deleted",
            code=first.code,
            reason=first.reason,
            metadata=first.metadata,
        )
    if not any(result.existed for result in results) and not args.force:
        error(f"no object {top!r} and none under {top + '/'!r} (OBJECT_NOT_FOUND)")
        return EXIT_NOT_FOUND
    return EXIT_OK


def run_cp(client: Client, args: argparse.Namespace) -> int:
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


def default_target() -> str:
    return os.environ.get("STORAGEGW_TARGET", "127.0.0.1:50051")
