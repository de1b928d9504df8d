# Everything installs into the project: .venv (Python) and node_modules (the Firestore emulator).
# Nothing here relies on what a previous session left on the machine. A target installs only what
# it uses: Node (node_modules) only for the targets that run the Firestore emulator (the whole
# suite, contract, integration, bench); `make serve`, `make demo` and the other tiers need Python only.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: setup lint test test-fast test-unit test-contract test-integration test-e2e test-sandbox test-infra \
	demo serve bench openapi clean

setup: $(VENV_STAMP) $(NODE_STAMP)

$(VENV_STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $@

# npm ci installs exactly what package-lock.json pins.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	PYTHONPATH=. $(VENV)/bin/lint-imports

test: setup lint
	$(PY) -m pytest --durations=25

# The suite without lint, for a quick loop while editing.
test-fast: setup
	$(PY) -m pytest -q -x

# One tier at a time. Every folder under tests/ that holds tests belongs to exactly one of these
# (tests/unit/test_test_layout.py checks it); `make test` runs them all in one session.
TIER_TARGETS := test-unit test-contract test-integration test-e2e test-sandbox test-infra

test-unit: $(VENV_STAMP)
	$(PY) -m pytest -q tests/unit

test-contract: setup
	$(PY) -m pytest -q tests/contract

test-integration: setup
	$(PY) -m pytest -q tests/integration

test-e2e: $(VENV_STAMP)
	$(PY) -m pytest -q tests/e2e

test-sandbox: $(VENV_STAMP)
	$(PY) -m pytest -q tests/sandbox

test-infra: $(VENV_STAMP)
	$(PY) -m pytest -q tests/infra

demo: $(VENV_STAMP)
	$(PY) -m embedded.demo

# The one-machine server (docs/serve.md), in sandbox mode unless CRM_MODE says otherwise:
# `make serve` to explore, `CRM_MODE=real make serve` for the fund. Ctrl-C stops it gracefully.
CRM_MODE ?= sandbox
serve: $(VENV_STAMP)
	CRM_MODE=$(CRM_MODE) $(PY) -m embedded.server

# The admin API's OpenAPI document, generated from the routes' declarations (a test compares).
openapi: $(VENV_STAMP)
	$(PY) -m functions.admin.openapi --write

bench: setup
	@for script in bench/[a-z]*.py; do \
		echo "== $$script"; \
		PYTHONPATH=. $(PY) $$script || exit 1; \
	done

clean:
	rm -rf $(VENV) node_modules build .mypy_cache .ruff_cache .pytest_cache

# --- Google Cloud deployment (infra/README.md) and one-machine backups -------------------------
.PHONY: plan deploy deploy-demo bundle lock backup

# What `deploy` would change in the project named by infra/deploy.yaml (reads only).
plan: $(VENV_STAMP)
	$(PY) -m infra plan

# Shows the plan, asks, then converges the project; a second run changes nothing.
deploy: $(VENV_STAMP)
	$(PY) -m infra apply

# plan, apply, apply again against the loopback stand-ins (no Google project needed).
deploy-demo: $(VENV_STAMP)
	$(PY) -m infra demo

# build/bundle/: the source Cloud Functions receives (main.py, requirements.txt, the code).
bundle: $(VENV_STAMP)
	$(PY) -m infra bundle

# Regenerates infra/requirements.lock from requirements.txt (asks the package index).
lock: $(VENV_STAMP)
	$(PY) -m infra lock

# A consistent copy of the SQLite store in var/backups/ (README, "Backups").
backup: $(VENV_STAMP)
	$(PY) -m embedded.backup
