# omnidesk: `make run` sets up and starts everything on the embedded default (SQLite, no
# Redis); `make test` sets up and runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config.example.toml
export OMNIDESK_CONFIG ?= $(CONFIG)

.PHONY: run test test-fast check setup system-deps lint bench bench-deps clean cluster

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# the secret the config reads from <data_dir>/secret_key when no other is given
var/secret_key:
	mkdir -p var
	$(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(48))' > $@
	chmod 600 $@

# the chat widget's socket.io client, pinned in package-lock.json; served locally, no CDN;
# and eslint (a devDependency) for `make check`
node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed var/secret_key node_modules/.installed

run: setup
	@$(BIN)/omnidesk demo
	@echo ""
	@echo "omnidesk is starting on the embedded default (SQLite under ./var, no Redis):"
	@echo "  agent workspace:  http://127.0.0.1:8080/           (sign in as a demo agent above)"
	@echo "  chat widget demo: http://127.0.0.1:8081/           (a host site on another origin)"
	@echo "  contact form:     http://127.0.0.1:8080/forms/contact"
	@echo "  captured mail:    http://127.0.0.1:8080/admin/mail     (outbound mail, for the demo admin)"
	@echo "  health:           http://127.0.0.1:8080/readyz"
	@echo "  API reference:    http://127.0.0.1:8080/api/v1/openapi.json"
	@echo "  inbound mail:     SMTP 127.0.0.1:2525, to support@support.example.com"
	@echo ""
	$(BIN)/omnidesk serve --migrate

# several processes on the local PostgreSQL and Redis (2 web, 1 router, 2 workers, 1 smtp)
cluster: setup
	scripts/cluster

# Debian packages the end-to-end tests drive (installed only when missing; root on CI).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v dovecot >/dev/null || missing="$$missing dovecot-imapd"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || { echo "could not install$$missing (need root and Debian's package registry)"; exit 1; }; \
	fi

# in parallel: most tests wait on sockets and processes, so three workers share two cores
# well; each worker has its own Redis database and PostgreSQL databases (tests/conftest.py)
TEST_WORKERS ?= 3
test: setup system-deps
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal

# the edit-test loop: the suite without the subprocess and browser tests, in parallel
test-fast: setup
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not slow and not browser"

# the quality gate CI runs before the tests: lint and format (ruff), mypy strict on every
# package (the list in pyproject.toml), eslint's recommended rules on our own JavaScript
check: lint
	$(BIN)/mypy
	node_modules/.bin/eslint .

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# wrk (a C load generator that leaves the CPU to the server) when it can be installed;
# bench/ingest.py and bench/cluster.py fall back to an aiohttp client without it
bench-deps:
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq wrk >/dev/null) || echo "wrk not installed: benches use the Python client"

bench: setup bench-deps
	for b in ingest email autoreply routing webchat cluster; do \
	  $(BIN)/python bench/$$b.py --quick || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache
