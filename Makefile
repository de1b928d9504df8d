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
	test-browser demo serve bench openapi clean console browser

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

# The console (console/, README "The console"): its own node_modules, built into console/dist,
# which admin_api serves. Rebuilt when its sources or the API document change.
CONSOLE_STAMP := console/node_modules/.installed
CONSOLE_SOURCES := $(shell find console/src -type f 2>/dev/null) console/index.html \
	console/vite.config.ts console/tsconfig.json infra/openapi.json

$(CONSOLE_STAMP): console/package.json console/package-lock.json
	cd console && npm ci --no-audit --no-fund --loglevel=error
	touch $@

console/dist/index.html: $(CONSOLE_STAMP) $(CONSOLE_SOURCES)
	cd console && npm run --silent build

console: console/dist/index.html

# The browser the console's tests drive: Debian's chromium (Playwright cannot download its own
# here). Installed with apt when missing and run as root, as CI does; else it says what to do.
browser:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium >/dev/null \
			|| { apt-get update -q && apt-get install -y -q chromium >/dev/null; }; \
		else echo "install Chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

lint: $(VENV_STAMP) $(CONSOLE_STAMP)
	cd console && npm run --silent check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	PYTHONPATH=. $(VENV)/bin/lint-imports

# The whole suite on WORKERS processes (pytest-xdist; CI has 2 cores, and many tests wait on
# servers rather than compute): a worker takes whole test modules, and the browser tier whole
# (tests/conftest.py, pytest_xdist_make_scheduler). WORKERS=0 runs it in this one process.
WORKERS ?= 2

test: setup lint console browser
	$(PY) -m pytest --durations=25 -n $(WORKERS)

# The suite without lint, for a quick loop while editing.
test-fast: setup
	$(PY) -m pytest -q -x

# One tier at a time. Every folder under tests/ that holds tests belongs to exactly one of these
# (tests/unit/test_test_layout.py checks it); `make test` runs them all in one session.
TIER_TARGETS := test-unit test-contract test-integration test-e2e test-sandbox test-infra test-browser

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

test-browser: $(VENV_STAMP) console browser
	$(PY) -m pytest -q tests/browser

demo: $(VENV_STAMP)
	$(PY) -m embedded.demo

# The one-machine server (docs/serve.md), in sandbox mode unless CRM_MODE says otherwise:
# `make serve` to explore, `CRM_MODE=real make serve` for the fund. Ctrl-C stops it gracefully.
CRM_MODE ?= sandbox
# The console is built when Node.js is here; without it the API is served alone, and it says so.
serve: $(VENV_STAMP)
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory console; \
	else echo "Node.js not found: serving the API without the console (install Node.js 20 for it)"; fi
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
	rm -rf $(VENV) node_modules console/node_modules console/dist build .mypy_cache .ruff_cache .pytest_cache

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
bundle: $(VENV_STAMP) console
	$(PY) -m infra bundle

# Regenerates infra/requirements.lock from requirements.txt (asks the package index).
lock: $(VENV_STAMP)
	$(PY) -m infra lock

# A consistent copy of the SQLite store in var/backups/ (README, "Backups").
backup: $(VENV_STAMP)
	$(PY) -m embedded.backup
