# sopflow: `make up` runs it on its embedded default; `make test` runs the test suite.
# Both install what they need first (a virtualenv in .venv, pinned by constraints.txt).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 4200
INTAKE_PORT ?= 8765

.PHONY: up test install browser schema screenshots bench profile

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(BIN)/.installed

up: install
	$(BIN)/sopflow up --port $(PORT) --intake-port $(INTAKE_PORT)

# Debian's chromium for the browser tests; Playwright never downloads a browser here.
browser:
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

test: install browser
	$(BIN)/python -m pytest

schema: install
	$(BIN)/sopflow schema --write

# The README's pictures: the browser tests take them as they approve leads in the Prefect UI.
screenshots: install browser
	$(BIN)/python -m pytest tests/browser

bench: install
	$(BIN)/python benchmarks/intake.py
	$(BIN)/python benchmarks/rescore.py
	$(BIN)/python benchmarks/audit.py
	$(BIN)/python benchmarks/lead_import.py
	$(BIN)/python -m benchmarks.execution
	$(BIN)/python -m benchmarks.execution --burst 500 --answers 20

# Where one lead's time goes, from the intake to its approval pause and from an answer to the next pause.
profile: install
	$(BIN)/python -m benchmarks.profile_run
