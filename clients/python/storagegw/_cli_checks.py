"""The `storagegw` commands of signed URLs and the gateway's upload checks:
sign, finalize (a direct upload) and scan (stored objects, again)."""

from __future__ import annotations

import argparse
import shlex
import sys

from storagegw._cli_commands import EXIT_OK, _print_fields
from storagegw.client import Client

__all__ = ["run_finalize", "run_scan", "run_sign"]


def run_sign(client: Client, args: argparse.Namespace) -> int:
    signed = client.sign_url(
        args.key,
        method=args.method,
        expires_in=args.expires,
        download=args.download,
        filename=args.filename,
        content_type=args.content_type,
        max_size=args.max_size,
        min_size=args.min_size,
        route=args.route,
        client_ip=args.client_ip,
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
    if signed.pending_upload:
        # The bytes land under a hidden key until the gateway checks them.
        hint = shlex.join(["storagegw", "finalize", signed.pending_upload])
        print(f"then, once uploaded: {hint}", file=sys.stderr)
    return EXIT_OK


def run_finalize(client: Client, args: argparse.Namespace) -> int:
    info = client.finalize_upload(
        args.pending_upload, if_none_match="*" if args.no_clobber else None
    )
    _print_fields(info.to_dict())
    for name, value in sorted(info.metadata.items()):
        print(f"metadata.{name}: {value}")
    return EXIT_OK


def run_scan(client: Client, args: argparse.Namespace) -> int:
    report = client.scan_objects(args.prefix, bucket=args.scan_bucket, page_size=args.page_size)
    for find in report.infected:
        where = (
            f"quarantined as {find.quarantine_bucket}:{find.quarantine_key}"
            if find.quarantine_key
            else "deleted"
        )
        print(f"INFECTED {find.key}: {find.signature}; {where}")
    print(
        f"scanned {report.scanned}, clean {report.clean} (newly marked clean "
        f"{report.marked_clean}), infected {len(report.infected)}, changed meanwhile "
        f"{report.changed}"
    )
    return EXIT_OK
