"""The gateway's telemetry (OpenTelemetry): the metrics of every call, transfer
and backend operation, exported as Prometheus text on a listener of their own
(GATEWAY_METRICS_LISTEN) and over OTLP when the OTEL_* settings ask for it;
a span of every call and of its backend calls, when traces are on.

Nothing here is called by the core or the drivers: the composition root
(gateway/server.py) wraps what it builds (each bucket's driver, the
authenticator) and hands the fronts the instruments, so that with telemetry
off nothing is wrapped and nothing is recorded.
"""
