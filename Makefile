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

.PHONY: repro test lint schema bench ui queue tracking-init clean-venv ci-report cost listen browser-deps \
	screenshots slurm-deps sweep

# Python writes the bytecode of what it imports into the venv (and __pycache__/, ignored by git and DVC) even
# where the shell sets PYTHONDONTWRITEBYTECODE: pip installs with --no-compile (half the install time: it
# would compile every file of torch, imported or not), so each module is compiled once, on first import,
# instead of in every one of the pipeline's and the tests' processes.
unexport PYTHONDONTWRITEBYTECODE

# MLflow's usage telemetry is off in every process make starts (dvc repro and its stages, the tests, the UI);
# vc.tracking sets the same for processes started without make.
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
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

## Debian's chromium and chromium-driver for the browser tests: installed with apt where make runs as root and
## they are absent; elsewhere the browser tests skip, saying why.
browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium and chromium-driver (browser tests)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else echo "chromium or chromium-driver absent and not root: the browser tests will skip"; fi

## Debian's slurm-wlm and munge for the SLURM tests (a private single-node cluster, tests/slurm_cluster.py):
## installed with apt where make runs as root and they are absent; elsewhere those tests skip, saying why.
slurm-deps:
	@if [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && [ -x /usr/sbin/munged ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing slurm-wlm and munge (SLURM tests)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; \
	else echo "slurm-wlm or munge absent and not root: the SLURM tests will skip"; fi

## Lint and run the test suite.
test: $(VENV)/.installed-dev browser-deps slurm-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder -q \
		--durations=25

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

## The MLflow UI on $(HOST):$(PORT), opened on the runs compared (MCD, CER, speaker accuracy, predicted MOS as
## columns, every experiment x seed run a row of its own): prints the link, opens it where a browser exists.
ui: tracking-init
	$(BIN)/python -m vc.tracking ui-compare --host $(HOST) --port $(PORT)

SCREENSHOTS ?= docs/screenshots
## The README's screenshots (listening page, listening test, MLflow UI) with the tests' headless Chromium.
screenshots: $(VENV)/.installed-dev browser-deps
	$(BIN)/python -m benchmarks.screenshots $(SCREENSHOTS)

## Run the queued DVC experiments with JOBS workers (each stage uses its share of the CPUs: VC_PARALLEL_JOBS).
queue: tracking-init
	VC_PARALLEL_JOBS=$(JOBS) PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc queue start -j $(JOBS)

## What the last run of each stage cost (time per stage and phase, per utterance, per iteration).
cost: $(VENV)/.installed
	$(BIN)/vc cost

LISTEN_DIR ?= listening-test
LISTEN_PORT ?= 8765
LISTEN_SEED ?= 0
LISTEN_SENTENCES ?= 2
RATERS ?= 0

## Listening test (README "Listen and rate"): build it once from the last `make repro`'s conversions, print
## RATERS new invitation links, serve on $(HOST):$(LISTEN_PORT) (loopback unless HOST is set).
listen: $(VENV)/.installed
	test -f $(LISTEN_DIR)/test.json || $(BIN)/vc listen build --folder $(LISTEN_DIR) \
		--converted converted/experiments --baselines converted/baselines --corpus data/corpus \
		--seed $(LISTEN_SEED) --sentences $(LISTEN_SENTENCES)
	if [ "$(RATERS)" -gt 0 ]; then $(BIN)/vc listen invite --folder $(LISTEN_DIR) --n $(RATERS) \
		--base-url http://$(HOST):$(LISTEN_PORT); fi
	$(BIN)/vc listen serve --folder $(LISTEN_DIR) --host $(HOST) --port $(LISTEN_PORT)

## A sweep (README "Sweeps on a cluster"):
##   make sweep SWEEP_NAME=lr SWEEP='-S train.optimizer.lr_g=1e-3,5e-4 -S seeds=[0],[1]' EXECUTOR=slurm ARGS='--gpus 1'
SWEEP_NAME ?= sweep
SWEEP ?=
EXECUTOR ?=
ARGS ?=
sweep: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/vc sweep run $(SWEEP_NAME) $(SWEEP) $(if $(EXECUTOR),--executor $(EXECUTOR)) $(ARGS)

clean-venv:
	rm -rf $(VENV)

## CI: regenerate the report with .ci/params.yaml in a temporary copy and check it (writes ci-report/).
ci-report: $(VENV)/.installed
	$(BIN)/python .ci/report.py --out ci-report
