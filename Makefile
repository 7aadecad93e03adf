# The README's two commands: `make run` (needs Python 3.11+ only) and `make test` (also
# installs the system packages the tests use, through .ci/setup-system).
PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
export PORT

.PHONY: run test migrate lint format clean-instance

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed-run

migrate: $(VENV)/.installed-run
	$(BIN)/flask --app wsgi db upgrade

run: migrate
	@echo ""
	@echo "  Privacy service on http://127.0.0.1:$(PORT)  (API docs: http://127.0.0.1:$(PORT)/api/docs)"
	@echo "  Next: create the first account and its admin API token (printed once):"
	@echo "    $(BIN)/flask --app wsgi accounts create \"Acme GmbH\" --admin you@example.com"
	@echo "  Then sign in at http://127.0.0.1:$(PORT)/auth/login with that e-mail: the sign-in"
	@echo "  link lands in instance/outbox/ as an .eml file (set PRIVACY_SMTP_URL to send mail)."
	@echo "  Background jobs run in the worker below, on the embedded broker in instance/broker/."
	@echo "  Ctrl-C stops both processes."
	@echo ""
	$(BIN)/python -m privacy.procfile --procfile Procfile --port $(PORT)

test: $(VENV)/.installed-test
	.ci/setup-system
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
