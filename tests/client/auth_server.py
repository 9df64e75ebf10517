"""A small gRPC server for the TLS and token tests, over a real TLS socket
(certificates made with trustme): it implements just enough of
StorageService to say what it saw of each call (the authorization metadata,
the client certificate's name) and to refuse a token as the gateway does
(UNAUTHENTICATED with TOKEN_EXPIRED or CREDENTIALS_MISSING)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import trustme
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from storagegw import TlsConfig
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, reason: str, text: str) -> None:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="storagegw"))
    status = status_pb2.Status(code=code.value[0], message=text, details=[detail])
    context.abort_with_status(rpc_status.to_status(status))


@dataclass
class Doorkeeper(storage_pb2_grpc.StorageServiceServicer):
    """Says what it saw of each call's credentials; refuses as the gateway would."""

    expired: set[str] = field(default_factory=set)
    requires_credentials: bool = False
    seen: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _admit(self, context: grpc.ServicerContext) -> tuple[str, str]:
        authorization = dict(context.invocation_metadata()).get("authorization", "")
        with self._lock:
            self.seen.append(authorization)
        peer = context.auth_context().get("x509_common_name", [b""])[0].decode()
        if authorization.removeprefix("Bearer ") in self.expired:
            _abort(context, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED", "token expired")
        if self.requires_credentials and not (authorization or peer):
            _abort(context, grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_MISSING", "who are you?")
        return authorization, peer

    def Head(self, request: pb.HeadRequest, context: grpc.ServicerContext) -> pb.HeadResponse:
        authorization, peer = self._admit(context)
        transport = context.auth_context().get("transport_security_type", [b"none"])[0]
        seen = {"authorization": authorization, "peer": peer, "transport": transport.decode()}
        return pb.HeadResponse(object=pb.ObjectInfo(key=request.key, metadata=seen))

    def Get(
        self, request: pb.GetRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.GetResponse]:
        self._admit(context)
        _abort(context, grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND", "no such object")
        yield from ()

    def Put(
        self, request_iterator: Iterator[pb.PutRequest], context: grpc.ServicerContext
    ) -> pb.PutResponse:
        self._admit(context)
        _abort(context, grpc.StatusCode.NOT_FOUND, "BUCKET_NOT_FOUND", "no such bucket")
        return pb.PutResponse()


@dataclass(frozen=True)
class Pki:
    """A CA, the server's certificate and a client's, also as PEM files."""

    ca: trustme.CA
    server: trustme.LeafCert
    client: trustme.LeafCert
    ca_file: Path
    client_cert_file: Path
    client_key_file: Path

    def server_credentials(self, *, mutual: bool) -> grpc.ServerCredentials:
        chain = b"".join(pem.bytes() for pem in self.server.cert_chain_pems)
        return grpc.ssl_server_credentials(
            [(self.server.private_key_pem.bytes(), chain)],
            root_certificates=self.ca.cert_pem.bytes() if mutual else None,
            require_client_auth=mutual,
        )

    def client_tls(self) -> TlsConfig:
        chain = b"".join(pem.bytes() for pem in self.client.cert_chain_pems)
        return TlsConfig(ca=self.ca_file, cert=chain, key=self.client.private_key_pem.bytes())


@dataclass
class Server:
    """A Doorkeeper being served, and the target to reach it at."""

    doorkeeper: Doorkeeper
    target: str


def serve(credentials: grpc.ServerCredentials | None) -> Iterator[Server]:
    """A Doorkeeper on a local port, over TLS with credentials, else in clear."""
    doorkeeper = Doorkeeper()
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    storage_pb2_grpc.add_StorageServiceServicer_to_server(doorkeeper, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    yield Server(doorkeeper, f"127.0.0.1:{port}")
    server.stop(None)
