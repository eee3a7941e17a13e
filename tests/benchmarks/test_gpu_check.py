"""benchmarks/gpu_check.py: its help, and its CPU dry run (the same code as on a GPU, float32)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
MODES = ("full_sleep", "lora_adapter", "lora_merged")


def test_gpu_check_help():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                            text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "--shape" in result.stdout and "gpu_check.md" in result.stdout


@pytest.mark.slow
def test_gpu_check_cpu_dry_run_passes_its_correctness_checks(tmp_path, tiny_model_dir):
    out = tmp_path / "gpu_check.md"
    subprocess.run([sys.executable, str(SCRIPT), "--shape", "small", "--steps", "2",
                    "--prompts", "2", "--n", "2", "--max-new-tokens", "16", "--out", str(out)],
                   env={**os.environ, "PYTHONPATH": str(REPO)}, check=True, timeout=900)
    rows = [line.split("|") for line in out.read_text().splitlines() if line.startswith("| small")]
    verdicts = {(r[2].strip(), r[3].strip()): r[-2].strip() for r in rows if len(r) == 8}
    assert out.read_text().startswith("# GPU check on CPU")
    for mode in MODES:
        assert verdicts[(mode, "log-prob mismatch (mean, last step)")] == "PASS", mode
        assert verdicts[(mode, "master weights moved")] == "PASS", mode
        assert (mode, "step time vs bare generate + bare learner") in verdicts
