# Everyday commands; .ci/run is what CI runs (it also installs the system and JS packages first).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: test test-fast screenshots lint format typecheck check bench routes

test:  ## the whole suite, on three processes (as .ci/run)
	$(VENV)/bin/pytest -n 3 --dist loadgroup $(PYTEST_ARGS)

test-fast:  ## everything but the browser, served-process and slow tests
	$(VENV)/bin/pytest -n 2 -m "not browser and not served and not slow" $(PYTEST_ARGS)

screenshots:  ## the browser tests, writing every page's screenshot (phone, desktop, light, dark) to test-artifacts/
	PORTAL_TEST_SCREENSHOTS=1 $(VENV)/bin/pytest -n 3 -m browser $(PYTEST_ARGS)

lint:  ## ruff lint and format check (no changes)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck:  ## mypy, configured in pyproject.toml ([tool.mypy])
	$(VENV)/bin/mypy

check: lint typecheck test

bench:  ## the small bench DB and a run against it (bench/README.md has the large one)
	$(PY) bench/generate.py --small
	$(PY) bench/run.py

routes:  ## every route: methods, path, handler
	$(VENV)/bin/portal routes
