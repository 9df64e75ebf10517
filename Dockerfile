# storagegw gateway image. Build: docker build -t storagegw .
# Run:   docker run -p 50051:50051 -p 8080:8080 -v storagegw-data:/data \
#          -v "$PWD/tls:/tls:ro" -e GATEWAY_TLS_CERT=/tls/tls.crt -e GATEWAY_TLS_KEY=/tls/tls.key \
#          storagegw
# It listens on 0.0.0.0, so it starts only with TLS (as above) or authentication
# (GATEWAY_JWKS, GATEWAY_TLS_CLIENT_CA, API keys in the policy); on a network that is
# itself protected, -e GATEWAY_ALLOW_INSECURE=1 instead serves in the clear, with a
# warning at every start. README: TLS.
# (Hardening — pinned digests, read-only root, distroless — comes in a later issue.)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY clients/python/storagegw ./clients/python/storagegw
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin storagegw \
 && mkdir -p /data && chown storagegw /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER storagegw
WORKDIR /data
ENV STORAGE_BASE_PATH=/data \
    GATEWAY_LISTEN=0.0.0.0:50051 \
    GATEWAY_HTTP_LISTEN=0.0.0.0:8080 \
    GATEWAY_HEALTH_LISTEN=0.0.0.0:8081 \
    GATEWAY_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 50051 8080 8081
# Signed URLs must name an address clients can reach: set STORAGE_BASE_URL.
# The health check asks the health-only listener (GATEWAY_HEALTH_LISTEN, plaintext,
# grpc.health.v1 and nothing else), which answers whatever TLS or mutual TLS the
# gRPC port requires; point Kubernetes gRPC probes at port 8081 too.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
  CMD ["python", "-c", "import grpc,sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; c=grpc.insecure_channel('127.0.0.1:8081'); sys.exit(0 if g.HealthStub(c).Check(h.HealthCheckRequest(), timeout=2).status == h.HealthCheckResponse.SERVING else 1)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["storagegw", "serve"]
