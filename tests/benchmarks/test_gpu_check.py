"""benchmarks/gpu_check.py: its verdicts, and its CPU dry run (the GPU code, in float32)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
MODES = ("full_sleep", "lora_adapter", "lora_merged")


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


def _gpu_check():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_check

    return gpu_check


def _case(peak: float, planned: float) -> dict:
    return {"dtype": "bfloat16", "mismatch_mean": 0.01, "mismatch_max": 0.1,
            "moved_fraction": 0.9, "peak_gib": peak, "planned_peak_gib": planned,
            "device_gib": 79.2, "bare_generate": 1.0, "bare_learner": 1.0,
            "stages": {"generate": 1.0, "reward": 0.0, "update": 1.0, "sync": 0.1, "step": 2.2},
            "response_tokens": 100}


def test_peak_memory_check_fails_when_the_plan_is_off_or_the_device_is_full():
    gpu_check = _gpu_check()

    def verdict(case: dict) -> bool:
        return {name: ok for name, _, _, ok in gpu_check.checks(case)}[
            "peak memory, measured vs planned"]

    assert verdict(_case(60.0, 55.0))
    assert not verdict(_case(60.0, 40.0))  # 50 % above the plan
    assert not verdict(_case(80.0, 78.0))  # over the device's memory


def test_out_of_memory_case_is_a_fail_with_its_bytes():
    gpu_check = _gpu_check()
    text = gpu_check.report({("qwen3-4b", "full_sleep"): {"oom": "CUDA out of memory.",
                                                          "oom_peak_gib": 77.5},
                             ("qwen3-4b", "lora_adapter"): _case(30.0, 29.0)},
                            "H100", "python benchmarks/gpu_check.py", 60.0)
    oom = [line for line in text.splitlines() if "full_sleep" in line]
    assert len(oom) == 1 and "77.5 GiB" in oom[0] and oom[0].endswith("FAIL |")
    assert text.strip().endswith("**FAIL (1 checks)**")
