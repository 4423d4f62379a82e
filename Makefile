# Two commands for a newcomer: `make run` (the whole app on the embedded default) and `make test`.
PYTHON ?= python3
PORT ?= 8000
export PORT
# honcho gives each process of `make run` a PORT of its own (the worker PORT + 100): links in the worker's alerts
# and digests must name the web's.
TOKENBOARD_BASE_URL ?= http://127.0.0.1:$(PORT)
export TOKENBOARD_BASE_URL
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install migrate lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py setup_periodic_tasks
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0

run: migrate
	$(BIN)/python manage.py seed_demo --if-empty
	@echo ""
	@echo "  Tokenboard: http://127.0.0.1:$(PORT)   logins: admin / manager / engineer, password: tokenboard"
	@echo ""
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile --port $(PORT)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) var db.sqlite3 staticfiles
