# Two entry points, each sets itself up on a fresh clone:
#   make run   – create .venv if missing, install the project, run the whole study (kedro run)
#   make test  – same set-up, then the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export KEDRO_DISABLE_TELEMETRY := 1
export MPLBACKEND := Agg
export OMP_WAIT_POLICY := PASSIVE

.PHONY: run test install viz clean-data

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name fly64_kedro --display-name "fly64_kedro" >/dev/null
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/kedro run
	$(BIN)/python -m fly64_kedro.summary

test: $(STAMP)
	$(BIN)/python -m pytest

viz: $(STAMP)
	$(BIN)/kedro viz run --no-browser --port 4141
