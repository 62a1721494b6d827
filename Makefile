# Two entry points, each sets itself up on a fresh clone:
#   make run   – create .venv if missing, install the project, run the whole study, print the headline table
#   make test  – same set-up, then the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export KEDRO_DISABLE_TELEMETRY := 1
export MPLBACKEND := Agg

.PHONY: run test install viz

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name fly64_kedro --display-name "fly64_kedro" >/dev/null
	touch $(STAMP)

install: $(STAMP)

# One job per core: two worker processes of one thread each keep both cores busy (small
# convolutions and LSQML epochs gain little from a second thread inside one job).
run: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/kedro run --runner ParallelRunner --runner-params max_workers=2
	$(BIN)/python -m fly64_kedro.summary

test: $(STAMP)
	$(BIN)/python -m pytest

viz: $(STAMP)
	$(BIN)/kedro viz run --no-browser --port 4141
