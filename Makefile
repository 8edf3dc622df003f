# The two commands of the quick start: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test soak faults fuzz typecheck lint bench-fanout bench-dispatch bench-http bench-lateness bench-memory bench-large-table loadtest bench-api clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edm demo

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

soak: $(STAMP)
	$(BIN)/python -m pytest -q -m soak $(PYTEST_ARGS)

# The fault runs of issue 8 (a throwaway PostgreSQL stopped and restarted, SIGSTOP of the
# leader, poison replies); -s shows each run's figures.
faults: $(STAMP)
	$(BIN)/python -m pytest -q -s -m faults $(PYTEST_ARGS)

# Schemathesis, all checks, against the app's own OpenAPI document (EDM_FUZZ_EXAMPLES per operation).
fuzz: $(STAMP)
	$(BIN)/python -m pytest -q -m schemathesis $(PYTEST_ARGS)

typecheck: $(STAMP)
	$(BIN)/python -m mypy

# Import contracts (pyproject.toml [tool.importlinter]): the layers of the tree.
lint: $(STAMP)
	$(BIN)/lint-imports

bench-fanout: $(STAMP)
	$(BIN)/python bench/fanout.py

# The engine through HTTP to a fake ESP process beside a bare aiohttp client (issue 11).
bench-http: $(STAMP)
	$(BIN)/python bench/http_dispatch.py --services 12000 --subtasks 60000

bench-lateness: $(STAMP)
	$(BIN)/python bench/lateness.py --services 2000 --seconds 30

bench-memory: $(STAMP)
	$(BIN)/python bench/memory.py

bench-dispatch: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/dispatch.py --services 12000 --subtasks 120000 --users 4

# Dispatch beside 20M settled subtasks vs an empty table (about 25 min, 9 GB of disk while it runs),
# then `edm archive` of the 20M; and what monthly partitions would cost the by-id statements.
bench-large-table: $(STAMP)
	$(BIN)/python bench/large_table.py --archive
	$(BIN)/python bench/partition_lookup.py

# Locust against a running product (`make demo`; EDM_API to point elsewhere), then p50/p95/p99 per endpoint.
loadtest: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[load]'
	mkdir -p .edm
	$(BIN)/locust -f loadtests/locustfile.py --headless -u 100 -r 20 -t 60s --host $${EDM_API:-http://127.0.0.1:8080} --only-summary --exit-code-on-error 0 --csv .edm/loadtest > /dev/null
	$(BIN)/python loadtests/report.py .edm/loadtest

# The same load against a fresh product the script starts itself (demo data, alice's 10k campaign sending).
bench-api: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[load]'
	$(BIN)/python bench/api_load.py

clean:
	rm -rf $(VENV) .edm
