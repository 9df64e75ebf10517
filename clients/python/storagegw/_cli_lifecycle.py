"""`storagegw lifecycle show`: a bucket's lifecycle rules and where each
is enforced. (`storagegw lifecycle apply` runs on the gateway's side.)"""

from __future__ import annotations

import argparse

from storagegw._cli_commands import EXIT_OK
from storagegw._lifecycle import LifecycleRule
from storagegw.client import Client

__all__ = ["run_lifecycle_show"]


def _age(seconds: float) -> str:
    days, rest = divmod(seconds, 86400)
    return f"{int(days)}d" if not rest else f"{seconds:g}s"


def _actions(rule: LifecycleRule) -> str:
    parts = []
    if rule.transition_after is not None:
        parts.append(f"to {rule.storage_class} after {_age(rule.transition_after)}")
    if rule.expire_after is not None:
        parts.append(f"expire after {_age(rule.expire_after)}")
    if rule.abort_incomplete_uploads_after is not None:
        parts.append(f"abort incomplete uploads after {_age(rule.abort_incomplete_uploads_after)}")
    return "; ".join(parts)


def run_lifecycle_show(client: Client, args: argparse.Namespace) -> int:
    lifecycle = client.get_lifecycle()
    print(f"bucket {lifecycle.bucket}")
    if not lifecycle.rules:
        print("  no lifecycle rules")
    for rule in lifecycle.rules:
        why = f" ({rule.reason})" if rule.reason else ""
        print(f"  {rule.id}: prefix {rule.prefix!r}: {_actions(rule)}: by {rule.enforced_by}{why}")
    if lifecycle.store_error:
        print(f"store rules: cannot be read: {lifecycle.store_error}")
    elif lifecycle.store_lifecycle:
        print("store rules:" if lifecycle.store_rules else "store rules: none")
        for found in lifecycle.store_rules:
            owner = "gateway" if found.managed else "operator"
            state = "" if found.enabled else " (disabled)"
            print(f"  {found.id}: prefix {found.prefix!r}: {found.description} [{owner}]{state}")
    return EXIT_OK
