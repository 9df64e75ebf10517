"""CloudFront signed URLs, as AWS documents them ("Create a signed URL using a
canned policy" / "... a custom policy", CloudFront Developer Guide):

- the policy statement, compact JSON:
  {"Statement":[{"Resource":URL,"Condition":{"DateLessThan":{"AWS:EpochTime":N}}}]}
  (a custom policy may add "IpAddress":{"AWS:SourceIp":CIDR} and
  "DateGreaterThan"); the member order is the documented one;
- its RSA-SHA1 (PKCS #1 v1.5) signature with the key pair's (or the key
  group's public key's) private key;
- base64 with "+" -> "-", "=" -> "_", "/" -> "~";
- canned: ?Expires=N&Signature=S&Key-Pair-Id=ID; custom: ?Policy=P&Signature=S&Key-Pair-Id=ID
  (P: the policy in that same base64).

botocore's CloudFrontSigner makes the same URLs (tests/cdn check it)."""

from __future__ import annotations

import base64
import ipaddress
import json
from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from gateway.cdn.signer import CdnUrlSigner
from gateway.domain.errors import invalid_argument

PolicyKind = Literal["canned", "custom"]


def url_safe_b64(data: bytes) -> str:
    """CloudFront's base64: "+" "=" "/" replaced by "-" "_" "~"."""
    encoded = base64.b64encode(data).decode("ascii")
    return encoded.replace("+", "-").replace("=", "_").replace("/", "~")


def policy_statement(
    resource: str, expire_time_unix: int, source_ip: str = "", starts_at_unix: int | None = None
) -> str:
    """The policy, compact, in the documented member order."""
    condition: dict[str, object] = {"DateLessThan": {"AWS:EpochTime": expire_time_unix}}
    if source_ip:
        condition["IpAddress"] = {"AWS:SourceIp": source_ip}
    if starts_at_unix is not None:
        condition["DateGreaterThan"] = {"AWS:EpochTime": starts_at_unix}
    statement = {"Statement": [{"Resource": resource, "Condition": condition}]}
    return json.dumps(statement, separators=(",", ":"))


def source_range(client_ip: str) -> str:
    """client_ip as the CIDR range a policy names (an address: its /32 or /128)."""
    try:
        network = ipaddress.ip_network(client_ip, strict=False)
    except ValueError:
        raise invalid_argument(
            f"client_ip must be an IP address or CIDR range, got {client_ip[:64]!r}"
        ) from None
    if "/" not in client_ip:
        return f"{client_ip}/{network.max_prefixlen}"
    return str(network)


class CloudFrontSigner(CdnUrlSigner):
    """Signs one distribution's URLs (a CdnSigner)."""

    provider = "cloudfront"

    def __init__(
        self,
        base_url: str,
        key_pair_id: str,
        private_key: RSAPrivateKey,
        policy: PolicyKind = "canned",
        *,
        require_ip: bool = False,
    ) -> None:
        super().__init__(base_url, require_ip=require_ip)
        self.key_pair_id = key_pair_id
        self._private_key = private_key
        self.policy = policy

    def __repr__(self) -> str:  # never the key
        return f"CloudFrontSigner(base_url={self.base_url!r}, policy={self.policy!r})"

    def signed(
        self, url: str, expire_time_unix: int, client_ip: str, not_before_unix: int | None
    ) -> str:
        if not_before_unix is not None and not_before_unix >= expire_time_unix:
            raise invalid_argument("not_before must be before the URL's expiry")
        if self.policy == "canned":
            if client_ip or not_before_unix is not None:
                raise invalid_argument(
                    "client_ip and not_before need a CloudFront custom policy; this bucket's "
                    "CDN uses the canned policy"
                )
            statement = policy_statement(url, expire_time_unix)
            first = f"Expires={expire_time_unix}"
        else:
            source = source_range(client_ip) if client_ip else ""
            statement = policy_statement(url, expire_time_unix, source, not_before_unix)
            first = f"Policy={url_safe_b64(statement.encode())}"
        # RSA-SHA1 is what CloudFront verifies (its documented algorithm).
        sha1 = hashes.SHA1()  # noqa: S303 - CloudFront's documented algorithm
        signature = self._private_key.sign(statement.encode(), padding.PKCS1v15(), sha1)
        return f"{url}?{first}&Signature={url_safe_b64(signature)}&Key-Pair-Id={self.key_pair_id}"
