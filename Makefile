# Backlog Commons — `make run` serves the app on SQLite with the real seed data;
# `make test` runs the whole suite (PostgreSQL and Redis when they answer).
PYTHON ?= python3
VENV ?= .venv
PORT ?= 5000
DEMO_PORT ?= 5001
# The demo's database lives in a directory of its own: the stand-ins keep their
# state beside the database (standins/), so it never mixes with make run's.
DEMO_DB ?= instance/demo/demo.sqlite3
BIN := $(VENV)/bin
export FLASK_APP := wsgi.py

.PHONY: install translations run seed demo test lint api-check check-migrations messages benchmark mutation clean

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

install: $(VENV)/.installed translations

# The compiled catalogues (messages.mo, not committed) from the .po files in git;
# a fresh clone serves French, Spanish and Portuguese after any of seed/run/test.
CATALOGUES := $(wildcard marketplace/translations/*/LC_MESSAGES/messages.po)

translations: $(CATALOGUES:.po=.mo)

marketplace/translations/%/LC_MESSAGES/messages.mo: marketplace/translations/%/LC_MESSAGES/messages.po $(VENV)/.installed
	@$(BIN)/pybabel compile --statistics -i $< -o $@ -l $*

instance/secret_key:
	mkdir -p instance
	$(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $@
	chmod 600 $@

# Migrations, then the registry and the issue snapshot, each skipped when its
# input did not change since the last import (-v on the flask commands lists every note).
seed: install translations instance/secret_key
	@SECRET_KEY=$$(cat instance/secret_key) $(BIN)/flask db upgrade > instance/migrations.log 2>&1 \
		|| (cat instance/migrations.log; exit 1)
	@echo "database: migrations applied (instance/migrations.log)"
	@SECRET_KEY=$$(cat instance/secret_key) $(BIN)/flask registry import --if-changed seed/dpg/registry.json
	@SECRET_KEY=$$(cat instance/secret_key) $(BIN)/flask backlog load-snapshot --if-changed seed/dpg-issues

# The app with local stand-ins for Stripe, the forge and mail, and the schedule
# run in-process (marketplace/standins/serve.py); Ctrl-C stops everything.
run: seed
	@SECRET_KEY=$$(cat instance/secret_key) $(BIN)/python -m marketplace.standins.serve --port $(PORT)

# A month played through the real services and the local Stripe on the demo's own
# database (rebuilt each time; never make run's): ends with "ledger ok" and the
# month's figures, then serves it with the stand-ins and a "Demo data" banner.
demo: install translations instance/secret_key
	SECRET_KEY=$$(cat instance/secret_key) $(BIN)/python -m marketplace.standins.demo --database $(DEMO_DB) --port $(DEMO_PORT)
	@SECRET_KEY=$$(cat instance/secret_key) DATABASE_URL=sqlite:///$(abspath $(DEMO_DB)) $(BIN)/python -m marketplace.standins.serve --demo --port $(DEMO_PORT)

# COVERAGE_FLOOR=<percent> (CI sets it) runs the suite under branch coverage and
# fails below that figure; without it, plain pytest.
test: install translations
ifdef COVERAGE_FLOOR
	$(BIN)/python -m coverage erase
	$(BIN)/python -m coverage run -m pytest $(PYTEST_ARGS)
	@$(BIN)/python -m coverage report --fail-under=$(COVERAGE_FLOOR) > .coverage-report.txt; \
		status=$$?; grep -E "^TOTAL|^Coverage failure" .coverage-report.txt; exit $$status
else
	$(BIN)/python -m pytest $(PYTEST_ARGS)
endif

# Style and import order (ruff) and the dependency contracts (import-linter,
# [tool.importlinter] in pyproject.toml): views → services → models, no view
# imports a view, no service imports jobs.
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Schemathesis against the served OpenAPI document, all phases and checks, fixed seed
# (also part of `make test`); API_CHECK_MAX_EXAMPLES=100 for a longer run.
api-check: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/api/test_api_conformance.py $(PYTEST_ARGS)

# Mutation testing (mutmut), one module at a time against its own tests
# (tests/mutation.py maps each module to them); slow, so not part of `make test`
# or CI. E.g. `make mutation MODULE=marketplace/money.py`.
MODULE ?= marketplace/money.py marketplace/markdown.py marketplace/payouts/split.py marketplace/backlog/service.py

mutation: install
	$(BIN)/python tests/mutation.py $(MODULE)

# Extract every string into messages.pot (sorted, file names without line
# numbers, so branches adding strings merge cleanly), bring each catalogue up to
# date with it (new strings empty, near matches fuzzy, removed ones dropped),
# then report per language what is translated, untranslated and fuzzy.
# A new language: `make messages LANGUAGE=xx` creates its catalogue first.
messages: install
	mkdir -p marketplace/translations
	$(BIN)/pybabel --quiet extract -F babel.cfg -k _l -k lazy_gettext --sort-output --add-location=file --no-wrap \
		--project="Backlog Commons" -o marketplace/translations/messages.pot .
	$(if $(LANGUAGE),test -e marketplace/translations/$(LANGUAGE)/LC_MESSAGES/messages.po || \
		$(BIN)/pybabel init -i marketplace/translations/messages.pot -d marketplace/translations -l $(LANGUAGE) --no-wrap)
	$(BIN)/pybabel --quiet update -i marketplace/translations/messages.pot -d marketplace/translations --no-wrap --ignore-obsolete --ignore-pot-creation-date
	@$(BIN)/python -m marketplace.catalogues report

# The HTTP benchmark (issue 15; benchmarks/README.md): generates BENCH_ITEMS items across
# BENCH_PROJECTS projects in the benchmark database, then wrk against gunicorn (2 workers)
# writes benchmarks/RESULTS.md; then the per-page SQL comparison. Needs PostgreSQL, Redis
# and wrk (Debian: apt-get install wrk). Not part of CI.
BENCH_ITEMS ?= 100000
BENCH_PROJECTS ?= 1000
BENCH_DURATION ?= 10

benchmark: install
	@command -v wrk > /dev/null || (echo "wrk is not installed (Debian: apt-get install wrk)"; exit 1)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[prod]'
	$(BIN)/python benchmarks/generate.py --projects $(BENCH_PROJECTS) --items $(BENCH_ITEMS)
	$(BIN)/python benchmarks/http_bench.py --duration $(BENCH_DURATION)
	$(BIN)/python benchmarks/backlog_pages.py --runs 20

clean:
	rm -rf $(VENV) instance .pytest_cache
