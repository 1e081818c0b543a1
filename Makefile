# The README's commands: `make demo`, `make test`, `make test-fast`. Each sets up .venv itself.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CODE := src tests benchmarks examples

# Tests send traffic only to loopback: pytest runs in a network namespace of its own with only
# loopback up (Ray then binds to 127.0.0.1). That needs unshare, ip and the right to make a
# namespace (root, as on the project's machines and CI); elsewhere pytest runs as it is.
LOOPBACK_OK := $(shell unshare -n sh -c 'ip link set lo up' >/dev/null 2>&1 && echo yes)
ifeq ($(LOOPBACK_OK),yes)
LOOPBACK := unshare -n sh -c 'ip link set lo up && exec "$$@"' sh
else
LOOPBACK :=
endif

.PHONY: setup test test-fast lint typecheck format demo bench bench-quick clean

setup: $(STAMP)

# Reinstalls whenever pyproject.toml or constraints.txt changes (the stamp is older then).
# constraints.txt holds the exact versions: torch 2.14.1 + the torchvision 0.29.1 built for it.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/python -c "import torch, torchvision, timm"
	@touch $(STAMP)

test: lint typecheck
	$(call pytest,)

test-fast: setup
	$(call pytest,-m "not slow")

lint: setup
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)

typecheck: setup
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

demo: setup
	$(BIN)/pathwaygrad demo

bench: setup
	$(BIN)/python benchmarks/run_all.py

bench-quick: setup
	$(BIN)/python benchmarks/run_all.py --quick

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .mypy_cache .pytest_cache .ruff_cache

define pytest
	@test "$(LOOPBACK_OK)" = yes || echo "note: no loopback-only network namespace (needs root, unshare and ip); pytest runs with this machine's network"
	$(LOOPBACK) $(BIN)/python -m pytest -q $(1)
endef
