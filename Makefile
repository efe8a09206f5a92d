# The two commands: `make run` serves the demo catalog, `make test` checks everything.
# Both install what they need from nothing and are quick when it is already there.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install system-deps lint pytest schema bench clean

run: install
	$(VENV)/bin/mlcatalog migrate
	$(VENV)/bin/mlcatalog demo --if-empty
	@echo "mlcatalog on http://$(HOST):$(PORT)/graphql"
	$(VENV)/bin/mlcatalog serve --host $(HOST) --port $(PORT)

test: install system-deps lint pytest

install: $(STAMP)

$(STAMP):
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

# The tests start real servers (docs/architecture.md): PostgreSQL from Debian's package, and an
# OpenSearch node and an OIDC provider from Maven Central (their jars land in deploy/local/lib-*/).
system-deps: install
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v java >/dev/null || missing="$$missing default-jdk-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi
	$(PY) -m tests.realservers

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

pytest: install
	$(VENV)/bin/pytest

schema: install
	$(VENV)/bin/mlcatalog export-schema --output schema.graphql

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache mlcatalog.db*
