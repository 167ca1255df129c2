# Two commands do all set-up on a fresh Debian machine: `make demo` and `make test`.
# Both install what is missing (Debian's redis-server, postgresql, etcd-server and patroni; a .venv with
# counterbench), then run.

VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system venv dynalite demo demo-replication demo-partitions test test-system docs lint clean bench bench-system

DYNALITE := .stack/node_modules/.bin/dynalite
APT_NEEDS := $(if $(shell command -v redis-server),,redis-server redis-tools) \
             $(if $(shell command -v node),,nodejs) $(if $(shell command -v npm),,npm) \
             $(if $(wildcard /usr/lib/postgresql/*/bin/initdb),,postgresql) \
             $(if $(shell command -v etcd),,etcd-server) $(if $(shell command -v patroni),,patroni)
# patroni: Debian's, on the system Python -- it runs as the postgres user, who cannot execute a venv under /root

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

demo-partitions: setup
	$(BIN)/counterbench run --suite partitions

# bench/: wrk (bench/http_load.py) and redis-benchmark (redis-tools, bench/redis_load.py), installed when missing
BENCH_APT_NEEDS := $(if $(shell command -v wrk),,wrk) $(if $(shell command -v redis-benchmark),,redis-tools)
# the benches of docs/performance.md's table, in its order; soak.py (a 10-minute run) and aa_compare.py
# (the real A/A test of `compare`) take about 12 minutes each
BENCHES := redis_load.py http_load.py history_overhead.py history_format.py check_scaling.py soak.py \
           stack_throughput.py aa_compare.py

bench-system: system
	@if [ -n "$(strip $(BENCH_APT_NEEDS))" ]; then \
	  echo "installing $(strip $(BENCH_APT_NEEDS)) (apt)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(BENCH_APT_NEEDS) >/dev/null; fi

# every bench in bench/, one after another (about 40 minutes on 2 cores); the machine is printed once, first.
# A bench that fails does not stop the others; make fails at the end, naming it.
bench: setup bench-system
	@$(BIN)/python bench/_rounds.py
	@failed=""; for b in $(BENCHES); do echo; $(BIN)/python bench/$$b --no-machine || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo; echo "failed:$$failed"; exit 1; fi

lint: venv
	$(BIN)/ruff check harness locustfiles tests bench docs

# the Locust web UI's Correctness tab is read as headless Chromium renders it (tests/integration/test_locust_tab.py)
TEST_APT_NEEDS := $(if $(shell command -v chromium),,chromium)

test-system: system
	@if [ -n "$(strip $(TEST_APT_NEEDS))" ]; then \
	  echo "installing $(strip $(TEST_APT_NEEDS)) (apt)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(TEST_APT_NEEDS) >/dev/null; fi

# docs/ as a MkDocs site; --strict: a broken link or a page left out of the nav fails
docs: venv
	$(BIN)/mkdocs build --strict --quiet --site-dir build/site

test: setup test-system lint docs
	$(BIN)/python -m pytest -q --durations=25

clean:
	rm -rf $(VENV) .stack .pytest_cache .ruff_cache
