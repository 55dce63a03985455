# The two commands of the README: `make demo` (embedded default: SQLite, local objects, in-process timers,
# demo data) and `make test` (the whole suite, on SQLite and then on PostgreSQL).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export MOTCUA_TEST_PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/motcua_test

.PHONY: demo test install bench validate clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The console's front-end packages (htmx, bpmn-js) from npm, pinned by the lock file.
api/web/node_modules/.package-lock.json: api/web/package-lock.json
	cd api/web && npm ci --no-audit --no-fund --loglevel=error

install: $(BIN)/.installed api/web/node_modules/.package-lock.json

demo: install
	$(BIN)/motcua demo

test: install
	$(BIN)/python scripts/run_tests.py

validate: install
	$(BIN)/motcua bpmn validate bpmn/*.yaml
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

bench: install
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.calendar_ops
	$(BIN)/python -m bench.timers
	$(BIN)/python -m bench.documents
	$(BIN)/python -m bench.kpi

clean:
	rm -rf var .pytest_cache
