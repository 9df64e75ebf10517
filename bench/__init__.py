"""Benchmark: the gateway against a raw grpc.aio streaming baseline on one machine.

Run with `make bench` (or `.venv/bin/python -m bench --help`). Two server
processes are started side by side: bench.raw_server (the transport ceiling:
bytes in, bytes out, no protobuf, no checksums, no disk) and the gateway on
the local backend in a temp dir. Every workload runs against both from this
driver process, one server at a time, and the gateway/raw ratios, server peak
RSS and targets are printed and written to bench/results/latest.json.

The S3 section (bench.s3; `--only s3`, `--s3-servers moto,ceph`) starts moto
and a Ceph RGW one after the other and on each compares the gateway on its S3
backend with direct aioboto3 calls from this process (same part size,
concurrency and client settings): Put and Get of SIZE/4 and SIZE, verified by
SHA-256, with the gateway's and the S3 server's peak RSS.

The GCS section (bench.gcs; `--only gcs`, `--gcs-chunk-size`) does the same
against fake-gcs-server with direct google-cloud-storage calls (same chunk
size, client and retry settings as the GCS driver). Both sections are
bench.remote's machinery with their own servers and direct clients.
"""
