"""The access settings, from the environment: bearer tokens (JWT), the policy
file (which also holds the static API keys), mutual TLS, reflection.

Every problem raises ConfigError naming the setting, at start, not at the
first call.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.access.policy import Policy
from gateway.domain.settings import ConfigError, parse_duration

DEFAULT_ALGORITHMS = ("RS256", "ES256", "EdDSA")
# Asymmetric algorithms only: a token signed with a key the gateway can publish.
SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_ZERO = re.compile(r"\s*0+(?:\.0*)?\s*[smhd]?\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class JwtSettings:
    """How bearer tokens are verified."""

    # A file path or an https:// URL (http:// only for a loopback host).
    jwks: str
    issuer: str
    audience: str
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    groups_claim: str = "groups"
    leeway: float = 30.0  # seconds of clock skew allowed on exp and nbf
    # A token with an unknown key id refetches the key set at most this often,
    # so a flood of made-up key ids cannot hammer the identity provider.
    refetch_interval: float = 30.0
    # The key set is refetched when older than this (an IdP drops revoked keys).
    max_age: float = 3600.0
    fetch_timeout: float = 10.0

    @property
    def jwks_is_url(self) -> bool:
        return self.jwks.startswith(("https://", "http://"))


@dataclass(frozen=True, slots=True)
class AccessSettings:
    jwt: JwtSettings | None = None
    # GATEWAY_POLICY, or policy.toml beside GATEWAY_CONFIG; None: no policy.
    policy_file: Path | None = None
    policy: Policy | None = None
    # GATEWAY_TLS_CLIENT_CA: its presence turns mutual TLS identities on
    # (the TLS settings themselves are read with the listeners').
    client_ca: Path | None = None
    reflection: bool = True

    @property
    def mtls(self) -> bool:
        return self.client_ca is not None

    @property
    def api_keys(self) -> bool:
        return self.policy is not None and bool(self.policy.api_keys)

    @property
    def authenticates(self) -> bool:
        """Whether calls must bring credentials: any way to prove an identity
        is configured."""
        return self.jwt is not None or self.api_keys or self.mtls


def load_access_settings(env: Mapping[str, str], config_file: Path | None) -> AccessSettings:
    """The access settings from env (os.environ in production); config_file
    is GATEWAY_CONFIG's path, beside which policy.toml is looked for."""
    env = {name: value.strip() for name, value in env.items() if value.strip()}
    policy_file = _policy_file(env, config_file)
    client_ca = env.get("GATEWAY_TLS_CLIENT_CA")
    return AccessSettings(
        jwt=_jwt(env),
        policy_file=policy_file,
        policy=Policy.load(policy_file) if policy_file is not None else None,
        client_ca=Path(client_ca) if client_ca else None,
        reflection=_switch(env, "GATEWAY_REFLECTION", default=True),
    )


def _policy_file(env: Mapping[str, str], config_file: Path | None) -> Path | None:
    if text := env.get("GATEWAY_POLICY"):
        path = Path(text)
        if not path.is_file():
            raise ConfigError("GATEWAY_POLICY", f"{path} is not a file")
        return path
    if config_file is not None:
        beside = config_file.parent / "policy.toml"
        if beside.is_file():
            return beside
    return None


def _jwt(env: Mapping[str, str]) -> JwtSettings | None:
    jwks = env.get("GATEWAY_JWKS")
    if jwks is None:
        for name in ("GATEWAY_JWT_ISSUER", "GATEWAY_JWT_AUDIENCE"):
            if name in env:
                raise ConfigError(name, "is set but GATEWAY_JWKS (the token signing keys) is not")
        return None
    _check_jwks(jwks)
    issuer, audience = env.get("GATEWAY_JWT_ISSUER"), env.get("GATEWAY_JWT_AUDIENCE")
    if issuer is None:
        raise ConfigError("GATEWAY_JWT_ISSUER", "is required with GATEWAY_JWKS")
    if audience is None:
        raise ConfigError("GATEWAY_JWT_AUDIENCE", "is required with GATEWAY_JWKS")
    leeway = 30.0
    if text := env.get("GATEWAY_JWT_LEEWAY"):
        leeway = 0.0 if _ZERO.fullmatch(text) else parse_duration("GATEWAY_JWT_LEEWAY", text)
    return JwtSettings(
        jwks=jwks,
        issuer=issuer,
        audience=audience,
        algorithms=_algorithms(env.get("GATEWAY_JWT_ALGORITHMS")),
        groups_claim=env.get("GATEWAY_JWT_GROUPS_CLAIM", "groups"),
        leeway=leeway,
    )


def _check_jwks(jwks: str) -> None:
    if "://" not in jwks:
        if not Path(jwks).is_file():
            raise ConfigError("GATEWAY_JWKS", f"{jwks} is not a file (or an https:// URL)")
        return
    url = urllib.parse.urlsplit(jwks)
    if url.scheme == "https" and url.hostname:
        return
    if url.scheme == "http" and url.hostname and is_loopback(url.hostname):
        return
    raise ConfigError(
        "GATEWAY_JWKS",
        f"{jwks} must be a file path or an https:// URL (http:// only for a loopback host)",
    )


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _algorithms(text: str | None) -> tuple[str, ...]:
    if text is None:
        return DEFAULT_ALGORITHMS
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise ConfigError("GATEWAY_JWT_ALGORITHMS", "lists no algorithm")
    for name in names:
        if name.lower() == "none" or name.upper().startswith("HS"):
            raise ConfigError(
                "GATEWAY_JWT_ALGORITHMS",
                f"{name} is refused: tokens must be signed with an asymmetric key "
                "(never 'none', never HMAC)",
            )
        if name not in SUPPORTED_ALGORITHMS:
            raise ConfigError(
                "GATEWAY_JWT_ALGORITHMS",
                f"{name} is not one of {', '.join(sorted(SUPPORTED_ALGORITHMS))}",
            )
    return names


def _switch(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    text = env.get(name)
    if text is None:
        return default
    value = text.lower()
    if value in ("on", "1", "true", "yes"):
        return True
    if value in ("off", "0", "false", "no"):
        return False
    raise ConfigError(name, f"{text!r} is neither on nor off")
