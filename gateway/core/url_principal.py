"""Who signed a URL, carried inside what is signed.

A URL signed by an authenticated principal names it (X-Sgw-Principal), with
its groups (X-Sgw-Groups) and the claims the policy's prefixes refer to
(X-Sgw-Claims); being X-Sgw-* parameters they are covered by the signature,
so nobody can change them. The HTTP listener makes the request's principal
Principal(id, Proof.SIGNED_URL, groups, claims) before it opens the target,
so the guards check the signer's grant again when the URL is used (as S3 and
GCS check a presigned URL against its signer's current permissions): a grant
withdrawn since signing stops the URL.

Claims: only those named in carried_claims (the ones a policy template such
as {claims.team} uses) and only string values travel, so a token's other
contents never appear in a URL. A URL signed while authentication was off
names nobody, and is used as ANONYMOUS, as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from gateway.domain.identity import ANONYMOUS, Principal, Proof

P_PRINCIPAL = "X-Sgw-Principal"
P_GROUPS = "X-Sgw-Groups"
P_CLAIMS = "X-Sgw-Claims"


def signer_params(principal: Principal, carried_claims: Iterable[str] = ()) -> dict[str, str]:
    """The query parameters naming principal (none for an unauthenticated one)."""
    if not principal.authenticated:
        return {}
    params = {P_PRINCIPAL: principal.id}
    if principal.groups:
        params[P_GROUPS] = json.dumps(sorted(principal.groups), separators=(",", ":"))
    claims = {
        name: value
        for name in sorted(set(carried_claims))
        if isinstance(value := principal.claims.get(name), str)
    }
    if claims:
        params[P_CLAIMS] = json.dumps(claims, separators=(",", ":"), ensure_ascii=False)
    return params


def signer_of(query: Mapping[str, str]) -> Principal:
    """The principal a verified URL's query names; ANONYMOUS when none.
    ValueError when the (signed, so gateway-made) values are malformed."""
    name = query.get(P_PRINCIPAL)
    if not name:
        return ANONYMOUS
    groups = json.loads(query.get(P_GROUPS, "[]"))
    claims = json.loads(query.get(P_CLAIMS, "{}"))
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ValueError("groups")
    if not isinstance(claims, dict) or not all(isinstance(v, str) for v in claims.values()):
        raise ValueError("claims")
    return Principal(name, Proof.SIGNED_URL, frozenset(groups), MappingProxyType(claims))
