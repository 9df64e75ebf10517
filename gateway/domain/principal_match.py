"""Whether a list of principals and groups speaks of a caller: the one
matching the access policy's grants (gateway.access.policy) and the upload
policy's per-principal rules (gateway.domain.upload_policy) share, so a name
means the same caller in both files."""

from __future__ import annotations

from gateway.domain.identity import Principal

# In a list of principals: every authenticated caller.
ANY = "*"


def names_caller(
    principals: frozenset[str],
    groups: frozenset[str],
    principal: Principal,
    caller_groups: frozenset[str],
) -> bool:
    """Whether principals (ids, or "*" for any authenticated caller) or groups
    name principal, whose groups are caller_groups (its own and those the
    policy's [groups] table gives it)."""
    named = principal.id in principals or (ANY in principals and principal.authenticated)
    return named or not groups.isdisjoint(caller_groups)
