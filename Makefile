# Two commands set everything up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mhsd
export REDIS_URL ?= redis://127.0.0.1:6379/0
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: install services run test lint benchmarks label-studio local-llm clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet '.[dev]'
	bash scripts/check-pth.sh $(BIN)/python
	touch $@

services:
	bash scripts/ensure-services.sh

run: install services
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	DEBUG=1 bash scripts/run-dev.sh

test: install services
	bash scripts/ensure-chromium.sh
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run

benchmarks: install services
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Optional: Label Studio in a virtualenv of its own, for benchmarks/label_studio_next.py (not a dependency of the
# platform; its Django and DRF versions differ from ours). sentry-sdk 3 removed an option Label Studio passes.
label-studio:
	python3 -m venv .label-studio-venv
	.label-studio-venv/bin/pip install -q "label-studio==1.23.2" "sentry-sdk<3" "gunicorn==27.0.1"

local-llm:
	bash scripts/local-llm.sh

clean:
	rm -rf $(VENV) .venv-llm .label-studio-venv staticfiles var
