"""The transport settings: TLS files, mutual TLS, and the insecure switch.

- GATEWAY_TLS_CERT and GATEWAY_TLS_KEY (PEM, both or neither): TLS on the gRPC
  port and on the signed-URL listener.
- GATEWAY_TLS_CLIENT_CA (PEM bundle): mutual TLS on the gRPC port, every
  connection's client certificate verified against it.
- GATEWAY_ALLOW_INSECURE=1: serve a non-loopback address with neither TLS nor
  authentication (the gateway warns at every start); without it that is refused.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.domain.settings import ConfigError
from gateway.transport.certificates import TlsSettings, read_certificates

LISTEN_SETTINGS = {"GATEWAY_LISTEN": "127.0.0.1:50051", "GATEWAY_HTTP_LISTEN": "127.0.0.1:8080"}


@dataclass(frozen=True, slots=True)
class TransportSettings:
    tls: TlsSettings | None = None
    # (setting, host:port) of the listeners reached from the network although
    # neither TLS nor authentication protects them (GATEWAY_ALLOW_INSECURE=1).
    insecure_listens: tuple[tuple[str, str], ...] = ()

    @property
    def scheme(self) -> str:
        """Of the signed-URL listener's URLs."""
        return "https" if self.tls is not None else "http"


def load_transport_settings(env: Mapping[str, str], authenticates: bool) -> TransportSettings:
    """The transport settings of env (empty values already dropped), given
    whether authentication is on; ConfigError names the setting at fault, a
    listener exposed in the clear included."""
    tls = _tls(env)
    allow = env.get("GATEWAY_ALLOW_INSECURE", "0")
    if allow not in ("0", "1"):
        raise ConfigError("GATEWAY_ALLOW_INSECURE", f"must be 0 or 1, got {allow!r}")
    listens = {name: env.get(name, default) for name, default in LISTEN_SETTINGS.items()}
    exposed = tuple((name, text) for name, text in listens.items() if not is_loopback(text))
    if tls is not None or authenticates or not exposed:
        return TransportSettings(tls)
    if allow != "1":
        raise ConfigError(
            " and ".join(name for name, _ in exposed),
            f"{', '.join(text for _, text in exposed)} is reachable from the network "
            "but neither TLS (GATEWAY_TLS_CERT and GATEWAY_TLS_KEY) nor authentication "
            "(GATEWAY_JWKS, GATEWAY_TLS_CLIENT_CA, API keys in the policy) is set; set them, "
            "listen on a loopback address, or set GATEWAY_ALLOW_INSECURE=1 to serve anyone "
            "who reaches it",
        )
    return TransportSettings(tls, exposed)


def describe(tls: TlsSettings | None) -> str:
    """For the start's log line."""
    if tls is None:
        return "no TLS"
    if tls.client_ca is None:
        return "TLS"
    return "TLS with client certificates required"


def is_loopback(listen: str) -> bool:
    """Whether host:port listens on loopback only (127.0.0.0/8, ::1, localhost)."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost, "", "0.0.0.0"...


def _tls(env: Mapping[str, str]) -> TlsSettings | None:
    cert, key = env.get("GATEWAY_TLS_CERT"), env.get("GATEWAY_TLS_KEY")
    client_ca = env.get("GATEWAY_TLS_CLIENT_CA")
    if cert is None and key is None:
        if client_ca is not None:
            raise ConfigError(
                "GATEWAY_TLS_CLIENT_CA", "needs TLS: set GATEWAY_TLS_CERT and GATEWAY_TLS_KEY"
            )
        return None
    if cert is None or key is None:
        missing = "GATEWAY_TLS_CERT" if cert is None else "GATEWAY_TLS_KEY"
        raise ConfigError(missing, "GATEWAY_TLS_CERT and GATEWAY_TLS_KEY go together: set both")
    settings = TlsSettings(
        Path(os.path.expanduser(cert)),
        Path(os.path.expanduser(key)),
        None if client_ca is None else Path(os.path.expanduser(client_ca)),
    )
    read_certificates(settings)  # a problem stops the start, naming the file's setting
    return settings
