# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
LITELLM_VENV := bench/.litellm-venv
PROTO_SRC := protos/inference/gateway/v1/gateway.proto

.PHONY: install run test lint typecheck test-fast test-slow protos buf buf-lint buf-breaking \
	contract-release deploy-tools client-tools clients clean bench bench-quick

# The simulator is its own distribution (simulator/): installed here for `make run`,
# the tests and the bench, never part of the gateway's wheel or image.
$(VENV)/.installed: pyproject.toml simulator/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -e ./simulator
	touch $@

install: $(VENV)/.installed

# `npm ci` installs exactly the committed lock and never rewrites it, so the tree stays
# clean; it runs only when the installed buf is not the pinned one (worktrees may share
# one node_modules, which `npm ci` would empty and refill).
BUF := node_modules/.bin/buf
BUF_VERSION := $(shell sed -n 's|.*"@bufbuild/buf": "\(.*\)".*|\1|p' package.json)

buf:
	@test "$$($(BUF) --version 2>/dev/null)" = "$(BUF_VERSION)" || \
		npm ci --silent --no-audit --no-fund --ignore-scripts

## run: start the gateway (against the embedded simulator when no token is set)
run: install
	$(BIN)/inference-gateway run

## protos: regenerate the Python stubs from the .proto (commit the result)
protos: install
	$(PY) -m inference_gateway.protogen service

## client-tools: protoc, Go, grpc-java and TypeScript for the client stubs (apt needs root)
client-tools:
	clients/install-tools.sh

# What protos/buf.gen.yaml writes; emptied first so a removed message leaves no file behind.
CLIENT_STUBS := clients/go/inference clients/java/src/main/java clients/typescript/src/gen

## clients: regenerate the Go, Java and TypeScript stubs from the .proto (commit the result)
clients: buf client-tools
	rm -rf $(CLIENT_STUBS)
	cd protos && ../$(BUF) generate

buf-lint: buf
	cd protos && ../$(BUF) lint

# The contract as last released. Between releases, fields may be added; any change that
# breaks a client built against the release (a removed or renumbered field, a changed
# type, a renamed RPC) fails buf-breaking.
CONTRACT := releases/v1.binpb

## buf-breaking: the contract against the last released one (protos/releases/v1.binpb)
buf-breaking: buf
	cd protos && ../$(BUF) breaking --against $(CONTRACT)

## contract-release: when a release is cut, make its contract the one buf-breaking guards
contract-release: buf-lint
	cd protos && ../$(BUF) build --exclude-source-info -o $(CONTRACT)

lint: install
	$(BIN)/ruff check service simulator tests bench clients/python
	$(BIN)/ruff format --check service/inference_gateway simulator tests bench clients/python

typecheck: install
	$(BIN)/mypy

## deploy-tools: promtool, kubectl and kubernetes-validate for tests/test_deploy.py (apt needs root)
deploy-tools: install
	deploy/install-tools.sh $(VENV)

# Two workers: the suite mostly waits (on sockets, timers, child processes), so two
# processes halve the wall time while using about half a core between them.
PYTEST := $(BIN)/pytest -q -n 2 --dist worksteal

## test-fast: the fast tier, everything not marked slow (under 3 minutes on 2 cores)
test-fast: install buf deploy-tools
	$(PYTEST) -m "not slow"

## test-slow: the slow tier: real-time minutes, real Prometheus, deploy tools, full-size fuzzing
test-slow: install buf deploy-tools client-tools
	$(PYTEST) -m slow

## test: install what is needed and run the whole suite, fast tier first
test: lint typecheck buf-lint buf-breaking test-fast test-slow

## bench: the gateway against same-run baselines and LiteLLM (under 20 minutes); writes bench/results/latest.md
bench: install deploy-tools $(LITELLM_VENV)/.installed
	$(PY) -m bench.run --output bench/results/latest.md --litellm $(LITELLM_VENV)/bin/litellm

## bench-quick: throughput and CPU per call against the forwarder, as ratios with floors (< 2 minutes)
bench-quick: install
	$(PY) -m bench.quick

# The peer, LiteLLM's proxy, in a venv of its own: pinned by version and hash, never
# importable by the gateway or its tests.
$(LITELLM_VENV)/.installed: bench/litellm/requirements.txt
	rm -rf $(LITELLM_VENV)
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip install --quiet --require-hashes --no-deps \
		-r bench/litellm/requirements.txt
	touch $@

clean:
	rm -rf $(VENV) node_modules .mypy_cache .pytest_cache .ruff_cache
