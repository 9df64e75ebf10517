"""`python -m gateway.healthcheck`: ask the gateway whether it serves.

The container image's HEALTHCHECK and an exec probe run it; it reads the settings
the gateway itself reads, so the port (and TLS) follow the configuration rather than
a number baked into the image. Exit 0 when the grpc.health.v1 Check of the service
(default "": the whole gateway, every bucket's backend probe passing) answers
SERVING; 1 otherwise, with the reason on stderr.

- GATEWAY_HEALTH_LISTEN, when set: the health-only listener, plaintext whatever
  the gRPC port requires; otherwise GATEWAY_LISTEN. A wildcard host (0.0.0.0, ::,
  empty) is asked on loopback.
- On GATEWAY_LISTEN with GATEWAY_TLS_CERT set the gateway speaks TLS only: the check then trusts
  GATEWAY_HEALTHCHECK_CA (the CA that issued the gateway's certificate) and checks
  the name the certificate carries, and with GATEWAY_TLS_CLIENT_CA it presents
  GATEWAY_HEALTHCHECK_CERT and GATEWAY_HEALTHCHECK_KEY.

Health answers without credentials, so no token is needed.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import grpc
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_LISTEN = "127.0.0.1:50051"
_WILDCARDS = {"", "0.0.0.0", "::"}  # listen on every address


class ProbeError(Exception):
    """The check could not be made as configured (a missing CA...)."""


def probe_target(listen: str) -> str:
    """Where to reach a gateway listening on `listen` from inside its host."""
    host, _, port = listen.rpartition(":")
    bare = host.strip("[]")
    if bare in _WILDCARDS:
        return f"[::1]:{port}" if ":" in bare else f"127.0.0.1:{port}"
    try:
        if ipaddress.ip_address(bare).version == 6:
            return f"[{bare}]:{port}"
    except ValueError:
        pass  # a host name
    return f"{bare}:{port}"


def _certificate_name(cert_file: Path) -> str | None:
    """The first DNS name (else IP address) the gateway's certificate is for."""
    leaf = x509.load_pem_x509_certificate(cert_file.read_bytes())
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    dns = names.get_values_for_type(x509.DNSName)
    if dns:
        return dns[0].removeprefix("*.")
    addresses = names.get_values_for_type(x509.IPAddress)
    return str(addresses[0]) if addresses else None


def _read(env: Mapping[str, str], setting: str) -> bytes:
    path = env.get(setting, "")
    if not path:
        raise ProbeError(f"{setting} is not set")
    try:
        return Path(os.path.expanduser(path)).read_bytes()
    except OSError as error:
        raise ProbeError(f"{setting}: cannot read {path}: {error.strerror}") from None


def open_channel(env: Mapping[str, str]) -> grpc.Channel:
    """A channel to the gateway as env configures it."""
    health_listen = env.get("GATEWAY_HEALTH_LISTEN")
    if health_listen:
        return grpc.insecure_channel(probe_target(health_listen))
    target = probe_target(env.get("GATEWAY_LISTEN") or DEFAULT_LISTEN)
    cert = env.get("GATEWAY_TLS_CERT")
    if not cert:
        return grpc.insecure_channel(target)
    if not env.get("GATEWAY_HEALTHCHECK_CA"):
        raise ProbeError(
            "the gateway serves TLS (GATEWAY_TLS_CERT): set GATEWAY_HEALTHCHECK_CA to the CA "
            "that issued its certificate"
        )
    client_cert = client_key = None
    if env.get("GATEWAY_TLS_CLIENT_CA"):
        client_cert = _read(env, "GATEWAY_HEALTHCHECK_CERT")
        client_key = _read(env, "GATEWAY_HEALTHCHECK_KEY")
    credentials = grpc.ssl_channel_credentials(
        _read(env, "GATEWAY_HEALTHCHECK_CA"), client_key, client_cert
    )
    options = []
    name = _certificate_name(Path(os.path.expanduser(cert)))
    if name is not None:
        # The check dials loopback; the certificate names the service.
        options.append(("grpc.ssl_target_name_override", name))
    return grpc.secure_channel(target, credentials, options=options)


def check(env: Mapping[str, str], service: str = "", timeout: float = 2.0) -> str:
    """The gateway's health status name (SERVING, NOT_SERVING...); ProbeError or
    grpc.RpcError when it cannot be asked."""
    with open_channel(env) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.healthcheck",
        description="Exit 0 when the gateway (GATEWAY_HEALTH_LISTEN, else GATEWAY_LISTEN) "
        "answers SERVING.",
    )
    parser.add_argument("--service", default="", help='health service name (default "")')
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds (default 2)")
    args = parser.parse_args(argv)
    try:
        status = check(os.environ, args.service, args.timeout)
    except ProbeError as error:
        print(f"healthcheck: {error}", file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        if isinstance(error, grpc.Call):
            print(f"healthcheck: {error.code().name}: {error.details()}", file=sys.stderr)
        else:
            print(f"healthcheck: {error}", file=sys.stderr)
        return 1
    if status != "SERVING":
        print(f"healthcheck: {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
