"""URLs signed by GCS's rules for the GCS driver: V4 signed GET and PUT URLs
and V4 POST policies, signed with the operator's service-account key when
there is one, else through the IAM Credentials API (signBlob) as a service
account. Signing runs in the driver's thread pool: signBlob, and refreshing
credentials that must learn their account, are HTTP calls."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from gateway.backends.gcs.common import KIND, GcsContext
from gateway.backends.gcs.connection import emulator_url
from gateway.backends.gcs.settings import GcsSettings
from gateway.backends.shared import presign
from gateway.domain.errors import unsupported
from gateway.domain.objects import Presigned, PresignRequest

MAX_POLICY_SIZE = 5 * 1024**4  # GCS's largest object: 5 TiB


async def sign_url(
    ctx: GcsContext, settings: GcsSettings, signer: Any, request: PresignRequest
) -> Presigned:
    """A V4 signed URL (GET, PUT) or POST policy for request.key; signer is
    the credentials connect() found (None when there are none)."""
    key, method = request.key, request.method
    expiration = datetime.timedelta(seconds=request.expires_in_s)
    blob = ctx.blob(key)
    if method == "POST":
        # The library adds the exact object name to the policy.
        fields, conditions = presign.post_policy(request, MAX_POLICY_SIZE)
        with ctx.errors(key, op="sign"):
            policy = await ctx.run(
                _sign_post, settings, signer, ctx.client, blob.name, expiration, conditions, fields
            )
        return presign.signed_post(policy)
    args: dict[str, Any] = {"version": "v4", "expiration": expiration, "method": method}
    headers: dict[str, str] = {}
    if method == "GET":
        if request.download:
            args["response_disposition"] = presign.download_disposition(request)
    elif method == "PUT":
        headers = presign.put_headers(request, KIND)
        if request.content_type:
            args["content_type"] = request.content_type
    else:
        raise unsupported(option=f"signed {method} URLs", backend=KIND)
    if settings.emulator_host:
        args["api_access_endpoint"] = emulator_url(settings.emulator_host)
    with ctx.errors(key, op="sign"):
        url = await ctx.run(_sign, settings, signer, blob, args)
    return Presigned(str(url), headers)


def _sign(settings: GcsSettings, signer: Any, blob: Any, args: dict[str, Any]) -> str:
    """Sign a URL (in the pool: IAM signBlob is an HTTP call)."""
    return str(blob.generate_signed_url(**_signing_identity(settings, signer), **args))


def _sign_post(
    settings: GcsSettings,
    signer: Any,
    client: Any,
    name: str,
    expiration: datetime.timedelta,
    conditions: Sequence[Any],
    fields: dict[str, str],
) -> dict[str, Any]:
    """Sign a POST policy (in the pool, as _sign)."""
    policy: dict[str, Any] = client.generate_signed_post_policy_v4(
        settings.bucket,
        name,
        expiration,
        conditions=conditions,
        fields=fields,
        **_signing_identity(settings, signer),
    )
    return policy


def _signing_identity(settings: GcsSettings, signer: Any) -> dict[str, Any]:
    """How the library signs: with a local key, or through IAM signBlob."""
    from google.auth import credentials as auth_credentials
    from google.auth.transport.requests import Request

    account = settings.signing_account
    if signer is None or isinstance(signer, auth_credentials.AnonymousCredentials):
        raise unsupported(
            option="signed URLs without a credentials file (STORAGE_GCS_CREDENTIALS_PATH)",
            backend=KIND,
        )
    if isinstance(signer, auth_credentials.Signing) and not account:
        return {"credentials": signer}
    # Credentials that hold no private key (user, GCE, Workload Identity):
    # the IAM Credentials API signs as a service account (signBlob), which
    # needs roles/iam.serviceAccountTokenCreator on it.
    if not signer.valid:
        signer.refresh(Request())  # also tells GCE credentials their account
    account = account or getattr(signer, "service_account_email", None)
    if not account or account == "default":
        raise unsupported(
            option="signed URLs with these credentials (set STORAGE_GCS_SIGNING_ACCOUNT)",
            backend=KIND,
        )
    return {"service_account_email": account, "access_token": signer.token}
