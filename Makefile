# memnode: `make run` (a local demo with embedded defaults) and `make test`.
# Every target sets up .venv/ on its own first; running them again is cheap.

PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.installed
PYTEST_ARGS ?=

.PHONY: setup run test lint typecheck proto bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	# The CPU build of torch first: sentence-transformers would pull a CUDA one.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev,infra]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m memnode.cli.demo

test: $(STAMP)
	bash scripts/test-tools.sh
	$(PY) -m ruff check src tests bench scripts
	$(PY) -m mypy
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check src tests bench scripts

typecheck: $(STAMP)
	$(PY) -m mypy

proto: $(STAMP)
	$(PY) scripts/genproto.py

BENCH_STAMP := .venv/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(PIP) install -q -c constraints.txt -e '.[dev,bench]'
	bash scripts/bench-tools.sh $(PIP)
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m bench all --quick

clean:
	rm -rf .venv .memnode-demo .pytest_cache .mypy_cache .ruff_cache
