"""Backend wrappers that change how a bucket's objects are stored, between the
core and the drivers: each is a Backend over a Backend, and imports only
gateway.backends.base and gateway.domain."""
