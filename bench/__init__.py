"""Benchmark: the gateway against a raw grpc.aio streaming baseline on one machine.

Run with `make bench` (or `.venv/bin/python -m bench --help`). Two server
processes are started side by side: bench.raw_server (the transport ceiling:
bytes in, bytes out, no protobuf, no checksums, no disk) and the gateway on
the local backend in a temp dir. Every workload runs against both from this
driver process, one server at a time, and the gateway/raw ratios, server peak
RSS and targets are printed and written to bench/results/latest.json.
"""
