# One entry point per job. Every target bootstraps .venv/ from requirements.lock when needed,
# so on a fresh clone `make contract` and `make test` are the only commands you need.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv client check-client lint test contract smoke compat mock bench bench-quick reliability lock browser-deps clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

venv: $(STAMP)  ## create .venv/ from the lock file

client: $(STAMP)  ## regenerate generated_client/ from openapi/qiwi-bill-payments.yaml
	$(BIN)/python scripts/regen_client.py

check-client: $(STAMP)  ## fail if the committed generated_client/ differs from a fresh generation
	$(BIN)/python scripts/regen_client.py --check

lint: $(STAMP)  ## spec validation + ruff + mypy --strict (hand-written and generated code)
	$(BIN)/python scripts/lint_spec.py
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy qiwi_bill qiwi_bill_mock contract_tests bench scripts examples
	$(BIN)/mypy --strict --config-file= generated_client/qiwi_bill_client

test: $(STAMP)  ## unit, property, contract (dev profile), browser and quick reliability tests
	$(BIN)/python -m pytest

contract: $(STAMP)  ## the main job: the contract suite against the embedded mock (ARGS="--base-url ... -k ...")
	$(BIN)/python -m contract_tests $(ARGS)

smoke: $(STAMP)  ## build the wheel, install it in a fresh venv outside the checkout, run its commands
	$(BIN)/python scripts/smoke_wheel.py $(ARGS)

compat: $(STAMP)  ## real clients against the mock (QIWI's Node SDK via npm ci, replayed Java/.NET/PHP requests) -> compat/results.md
	@if command -v npm >/dev/null; then cd compat/node && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the Node SDK tests skip (and fail when CI=true)"; fi
	$(BIN)/python -m pytest compat --compat-results $(ARGS)
	$(BIN)/python -m compat.results --readme README.md

mock: $(STAMP)  ## run the mock on 127.0.0.1:8080 (pass ARGS="--port 0 ..." for more)
	@$(BIN)/qiwi-bill-mock $(ARGS)

bench: $(STAMP)  ## full benchmark: bench/results/latest.{json,md,png}
	$(BIN)/python -m bench $(ARGS)

bench-quick: $(STAMP)  ## seconds-long benchmark smoke run (CI keeps the harness working)
	$(BIN)/python -m bench --quick $(ARGS)

.PHONY: mutation mutation-ci
mutation: $(STAMP)  ## mutation testing: seeded sample of mutants of the mock vs the contract suite (mutation/report.md)
	$(BIN)/python -m mutation $(ARGS)

mutation-ci: $(STAMP)  ## a few mutants the last full mutation run killed; fails if one now survives
	$(BIN)/python -m mutation --ci $(ARGS)

reliability: $(STAMP)  ## load, race, fault and fuzz scenarios with a summary table
	$(BIN)/python -m pytest -m slow tests/reliability -q $(ARGS)

browser-deps:  ## install Debian's chromium (needs root; CI runs this)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-liberation)

lock:  ## recompile requirements.lock from requirements.in (needs uv; in the lock itself)
	$(BIN)/uv pip compile requirements.in --python-version 3.11 --generate-hashes --no-header --universal -o requirements.lock

clean:  ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .schemathesis reports artifacts build dist
