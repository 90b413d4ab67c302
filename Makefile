# The two entry points: `make demo` (a whole sync of the bundled sandbox district) and `make test`.
# Both create .venv on first use, pinned by requirements-dev.txt (requirements.txt and the test tools)
# + constraints.txt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo demo-interactive test lint venv clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "writeback needs Python 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

## make demo: generate a district, start both sandboxes, run the DAG with a scripted reviewer, print the report
demo: $(STAMP)
	$(PY) -m sandbox.demo $(DEMO_ARGS)

## make demo-interactive: the same, but Airflow standalone and the sandboxes stay up for a person to review
demo-interactive: $(STAMP)
	$(PY) -m sandbox.demo --keep-running $(DEMO_ARGS)

## make test: the whole suite (CI=true makes any skip a failure)
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .demo .pytest_cache
