# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PROTO_SRC := protos/inference/gateway/v1/gateway.proto

.PHONY: install run test lint typecheck unit protos buf-lint deploy-tools clean bench

# The simulator is its own distribution (simulator/): installed here for `make run`,
# the tests and the bench, never part of the gateway's wheel or image.
$(VENV)/.installed: pyproject.toml simulator/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -e ./simulator
	touch $@

install: $(VENV)/.installed

node_modules/.bin/buf: package.json
	npm install --silent --no-audit --no-fund
	touch $@

## run: start the gateway (against the embedded simulator when no token is set)
run: install
	$(BIN)/inference-gateway run

## protos: regenerate the Python stubs from the .proto (commit the result)
protos: install
	$(PY) -m inference_gateway.protogen service

buf-lint: node_modules/.bin/buf
	cd protos && ../node_modules/.bin/buf lint

lint: install
	$(BIN)/ruff check service simulator tests bench
	$(BIN)/ruff format --check service/inference_gateway simulator tests bench

typecheck: install
	$(BIN)/mypy

## deploy-tools: promtool, kubectl and kubernetes-validate for tests/test_deploy.py (apt needs root)
deploy-tools: install
	deploy/install-tools.sh $(VENV)

unit: install deploy-tools
	$(BIN)/pytest -q

## test: install what is needed and run the whole suite
test: lint typecheck buf-lint unit

## bench: the gateway against same-run baselines (about 8 minutes); writes bench/results/latest.md
bench: install
	$(PY) -m bench.run --output bench/results/latest.md

clean:
	rm -rf $(VENV) node_modules .mypy_cache .pytest_cache .ruff_cache
