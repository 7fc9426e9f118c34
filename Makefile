# Two commands on a fresh machine: `make demo` and `make test`. Everything else is optional.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test serve serve-local bench lint install fixtures eval lock clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Dev tools plus the offline speech stack (the demo and the e2e tests use it).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,local]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/phone-agent call --fixture booking

# tests/redis_up.sh prints the REDIS_URL of a server that answers (starting one if needed).
# The tests mostly wait on real-time audio, so they run TEST_WORKERS at a time (more
# workers than cores pays), handed out one by one in a planned order: long ones first,
# a few speech-engine calls at a time (tests/helpers/schedule.py).
TEST_WORKERS ?= 6
test: $(STAMP)
	bash tests/ops/ensure_chromium.sh >/dev/null
	bash tests/ops/ensure_nginx.sh >/dev/null
	REDIS_URL="$$(bash tests/redis_up.sh)" && export REDIS_URL && \
	  $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) \
	    --dist load --maxschedchunk 1 --durations=15

serve: $(STAMP)
	$(BIN)/phone-agent serve

# The offline agent on this machine, no keys: prints the softphone's URL (with an admin
# token made up for the run) to talk to it from the browser.
serve-local: $(STAMP)
	$(BIN)/phone-agent serve --local

bench: $(STAMP)
	REDIS_URL="$$(bash tests/redis_up.sh)" && export REDIS_URL && \
	  for b in tests/bench/bench_*.py; do m=$$(basename $$b .py); echo "== $$m"; \
	    $(BIN)/python -m tests.bench.$$m || exit 1; done

fixtures: $(STAMP)
	$(BIN)/phone-agent fixtures build agent/devkit/calls

# The offline engine on callers it was never tuned on: utterances and whole calls
# (agent/devkit/eval/heldout); writes reports/eval-heldout.json. `--set tuning` for the other.
eval: $(STAMP)
	$(BIN)/phone-agent eval --set heldout

# Style, types, then the import rules of the layout (the last two also run in `make test`).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_import_rules.py

# The Docker image's lock files (deploy/requirements*.lock) after a dependency change.
lock: $(STAMP)
	$(BIN)/pip install -q uv
	UV=$(BIN)/uv bash deploy/lock.sh

clean:
	rm -rf $(VENV) .pytest_cache
