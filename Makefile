# The two commands: `make run` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench chaos chromium assets oidc-provider install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The front-end assets the app serves itself (package.json: GOV.UK Frontend and MOJ
# Frontend for the pages, Swagger UI and ReDoc for /docs and /redoc) and the browser tests'
# axe-core, from the npm registry at the versions package-lock.json pins; app/web/assets.py serves the
# pages' at /assets. No package's install scripts run; MOJ Frontend's optional peer (moment) is left out.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian's npm for the pages' assets"; \
			apt-get update -q && apt-get install -y -q --no-install-recommends npm; \
		else echo "npm is missing: sudo apt-get install npm"; exit 1; fi; \
	fi
	npm ci --ignore-scripts --omit=peer --no-audit --no-fund
	touch $(NODE_STAMP)

assets: $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP) oidc-provider

run: $(STAMP) $(NODE_STAMP)
	$(BIN)/casework migrate
	$(BIN)/casework up

# The import contract (.importlinter, docs/ARCHITECTURE.md) is part of the lint: a module
# importing a room above its own fails here (tests/test_architecture.py shows it does).
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint chromium assets oidc-provider
	$(BIN)/pytest -q

# The browser tests drive Debian's Chromium (Playwright never downloads a browser).
CHROMIUM := /usr/bin/chromium
chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -q && apt-get install -y -q --no-install-recommends chromium; \
	else \
		echo "$(CHROMIUM) is missing and cannot be installed here (needs apt-get, as root):"; \
		echo "  sudo apt-get install chromium   (the browser tests in tests/web/ are skipped without it)"; \
	fi

# The demo OpenID Connect provider (oidc/provider.mjs on `oidc-provider` from the npm
# registry, in a folder of its own): for the sign-in tests and `casework up --oidc-demo`.
oidc-provider: oidc/node_modules/.installed
oidc/node_modules/.installed: oidc/package.json oidc/package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --prefix oidc
	touch $@

# `make bench QUICK=1`: every bench at small sizes, to try them (figures: bench/RESULTS.md).
bench: $(STAMP)
	$(BIN)/python -m bench.ipa_throughput $(if $(QUICK),--quick)
	$(BIN)/python -m bench.latency $(if $(QUICK),--quick)
	$(BIN)/python -m bench.escalation_burst $(if $(QUICK),--quick)
	$(BIN)/python -m bench.read_model $(if $(QUICK),--quick)
	$(BIN)/python -m bench.memory $(if $(QUICK),--quick)

# Fault injection (chaos/): `make chaos` is the short form (in .ci/run; about 5 minutes here),
# `make chaos CHAOS=long` the sizes of docs/RELIABILITY.md. Exits non-zero if anything is lost
# or duplicated; an email resent after a worker was killed inside SMTP's at-least-once window
# is printed, not failed (chaos/duplicates.py).
CHAOS ?= short
chaos: $(STAMP)
	$(BIN)/python -m chaos --form $(CHAOS)

clean:
	rm -rf $(VENV) .casework .pytest_cache .mypy_cache oidc/node_modules
