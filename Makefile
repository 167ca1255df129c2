# Two commands do all set-up on a fresh Debian machine: `make demo` and `make test`.
# Both install what is missing (Debian's redis-server; a .venv with counterbench), then run.

VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system venv dynalite demo demo-replication test lint clean

DYNALITE := .stack/node_modules/.bin/dynalite
APT_NEEDS := $(if $(shell command -v redis-server),,redis-server redis-tools) \
             $(if $(shell command -v node),,nodejs) $(if $(shell command -v npm),,npm) \
             $(if $(wildcard /usr/lib/postgresql/*/bin/initdb),,postgresql)

setup: system venv dynalite

system:
	@if [ -n "$(strip $(APT_NEEDS))" ]; then \
	  echo "installing $(strip $(APT_NEEDS)) (apt)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_NEEDS) >/dev/null; fi

dynalite: $(DYNALITE)

# dynalite's LevelDB binding ships a prebuilt linux-x64 binary: no build scripts needed
$(DYNALITE):
	npm install --prefix .stack --ignore-scripts --no-audit --no-fund --loglevel=error dynalite@4.0.0

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(BIN)/counterbench run --suite demo

demo-replication: setup
	$(BIN)/counterbench run --suite replication

lint: venv
	$(BIN)/ruff check harness locustfiles tests bench

test: setup lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .stack .pytest_cache .ruff_cache
