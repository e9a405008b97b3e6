# The two setup commands of the README: `make repro` (main job on the embedded corpus) and `make test`.
# Both create .venv if absent and install the pinned dependency set; neither needs anything preinstalled
# beyond Python 3.11.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Optional extra index for torch, e.g. https://download.pytorch.org/whl/cpu on a machine where PyPI's
# default torch wheel would pull CUDA packages.
TORCH_INDEX ?=
PIP_INDEX := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX),)
HOST ?= 127.0.0.1
PORT ?= 5000
JOBS ?= 2

.PHONY: repro test lint schema bench ui queue tracking-init clean-venv ci-report

# Python writes the bytecode of what it imports into the venv (and __pycache__/, ignored by git and DVC) even
# where the shell sets PYTHONDONTWRITEBYTECODE: pip installs with --no-compile (half the install time: it
# would compile every file of torch, imported or not), so each module is compiled once, on first import,
# instead of in every one of the pipeline's and the tests' processes.
unexport PYTHONDONTWRITEBYTECODE
PIP_INSTALL = $(BIN)/python -m pip install --quiet --no-compile $(PIP_INDEX) -c constraints.txt
VENV_CREATE = test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# The perceptual metrics' extra (vc.perceptual; the evaluation skips a metric whose packages are missing) and
# the HiFi-GAN extra (the pretrained vocoder of the log-mel systems). resemblyzer 0.1.4 goes in with
# --no-deps: it requires `webrtcvad` (a source build) and the obsolete `typing` backport; the extra's
# webrtcvad-wheels provides the same module prebuilt.
EXTRAS := espeak,metrics,hifigan
define install
	$(VENV_CREATE)
	$(PIP_INSTALL) -e ".[$(1)]"
	$(PIP_INSTALL) --no-deps resemblyzer==0.1.4
endef

$(VENV)/.installed: pyproject.toml constraints.txt
	$(call install,$(EXTRAS))
	touch $@

# The same with the dev tools, in one pip run (one dependency resolution, not two, on a fresh clone).
DEV_EXTRAS := $(EXTRAS),dev
$(VENV)/.installed-dev: pyproject.toml constraints.txt
	$(call install,$(DEV_EXTRAS))
	touch $(VENV)/.installed $@

## Run the whole pipeline (dvc repro) on the embedded default corpus.
repro: $(VENV)/.installed
	$(BIN)/python -m pipeline.check
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro
	@echo "Done. Report: reports/report.md  metrics: reports/metrics.json  MLflow UI: make ui"

## Lint and run the test suite.
test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder -q \
		--durations=10

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Regenerate params.schema.json (editor completion and checks for params.yaml) from vc/config.py.
schema: $(VENV)/.installed
	$(BIN)/python -m vc.config schema > params.schema.json.tmp && mv params.schema.json.tmp params.schema.json

## Benchmarks (print figures; never part of the tests).
bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.features
	$(BIN)/python -m benchmarks.train_step
	$(BIN)/python -m benchmarks.dtw
	$(BIN)/python -m benchmarks.perceptual
	$(BIN)/python -m benchmarks.vocoder

## Create the MLflow database schema and experiment before parallel queue workers start.
tracking-init: $(VENV)/.installed
	$(BIN)/python -m vc.tracking init

## Start the MLflow UI on 127.0.0.1 against the project's tracking store.
ui: tracking-init
	$(BIN)/python -m vc.tracking ui --host $(HOST) --port $(PORT)

## Run the queued DVC experiments with JOBS workers (each stage uses its share of the CPUs: VC_PARALLEL_JOBS).
queue: tracking-init
	VC_PARALLEL_JOBS=$(JOBS) PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc queue start -j $(JOBS)

clean-venv:
	rm -rf $(VENV)

## CI: regenerate the report with .ci/params.yaml in a temporary copy and check it (writes ci-report/).
ci-report: $(VENV)/.installed
	$(BIN)/python .ci/report.py --out ci-report
