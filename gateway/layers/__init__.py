"""Backend wrappers that change what a bucket stores (below the core, above
the drivers): each implements the Backend protocol over an inner driver and
imports only gateway.backends.base and gateway.domain."""
