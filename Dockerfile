# storagegw gateway image. Build: docker build -t storagegw .
# Run:   docker run --stop-timeout 45 -p 50051:50051 -p 8080:8080 -v storagegw-data:/data \
#          -v "$PWD/tls:/tls:ro" -e GATEWAY_TLS_CERT=/tls/tls.crt -e GATEWAY_TLS_KEY=/tls/tls.key \
#          -e GATEWAY_HEALTHCHECK_CA=/tls/ca.crt -e STORAGE_BASE_URL=https://storage.example.com \
#          storagegw
# It listens on 0.0.0.0, so it starts only with TLS (as above) or authentication
# (GATEWAY_JWKS, GATEWAY_TLS_CLIENT_CA, API keys in the policy); on a network that is
# itself protected, -e GATEWAY_ALLOW_INSECURE=1 instead serves in the clear, with a
# warning at every start. README: TLS, Deploying.
#
# Stop timeout: on SIGTERM the gateway drains for GATEWAY_SHUTDOWN_GRACE (30 s here)
# before it cuts what is left. Docker's default stop timeout is 10 s, after which it
# sends SIGKILL mid-drain: run with --stop-timeout (or compose's stop_grace_period)
# at least GATEWAY_SHUTDOWN_GRACE + 10, as above. A Dockerfile cannot set it.
#
# The base is pinned by tag and by digest (the multi-platform index of
# python:3.11.14-slim-bookworm); to move it, take the new digest from
# `docker buildx imagetools inspect python:3.11.14-slim-bookworm` and change the line.
# Where images come from a registry mirror of your own, name its copy of the same
# image: --build-arg PYTHON_IMAGE=registry.example.com/python:3.11.14-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY clients/python/storagegw ./clients/python/storagegw
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
# libmagic1: the upload policy sniffs file types with it (python-magic loads it at run time).
RUN apt-get update && apt-get install -y --no-install-recommends libmagic1 \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin storagegw \
 && mkdir -p /data && chown 10001:10001 /data && chmod 0700 /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# Numeric, so that Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 10001:10001
WORKDIR /data
ENV STORAGE_BASE_PATH=/data \
    GATEWAY_LISTEN=0.0.0.0:50051 \
    GATEWAY_HTTP_LISTEN=0.0.0.0:8080 \
    GATEWAY_HEALTH_LISTEN=0.0.0.0:8081 \
    GATEWAY_SHUTDOWN_GRACE=30 \
    GATEWAY_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
VOLUME ["/data"]
EXPOSE 50051 8080 8081
# Signed URLs must name an address clients can reach: set STORAGE_BASE_URL (the
# gateway warns at start when they would name 0.0.0.0).
# The check asks grpc.health.v1 on the health-only listener (GATEWAY_HEALTH_LISTEN,
# plaintext, health and nothing else), which answers whatever TLS or mutual TLS the
# gRPC port requires; without it, on GATEWAY_LISTEN, with TLS trusting
# GATEWAY_HEALTHCHECK_CA (and presenting GATEWAY_HEALTHCHECK_CERT/_KEY under mutual
# TLS): gateway/healthcheck.py. Point Kubernetes gRPC probes at port 8081 too.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-m", "gateway.healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["storagegw", "serve"]
