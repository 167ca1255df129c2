# Two commands do all set-up on a fresh Debian machine: `make demo` and `make test`.
# Both install what is missing (Debian's redis-server; a .venv with counterbench), then run.

VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO    := redis-counter redis-counter-unsafe redis-seats redis-seats-unsafe redis-amount \
           redis-unique-ids redis-page-views http-counter http-seats

.PHONY: setup system venv demo test lint clean

setup: system venv

system:
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (apt)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server redis-tools >/dev/null; }

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(BIN)/counterbench run -q $(addprefix -s ,$(DEMO))

lint: venv
	$(BIN)/ruff check harness locustfiles tests bench

test: setup lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
