"""``scripts/reproduce.py --check`` re-runs a stored (row, seed) and reproduces it exactly."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHORT = ["rollout=hf", "total_steps=2", "checkpoint_every=0", "prompts_per_step=4",
         "eval.benchmarks.0.limit=4", "eval.benchmarks.1.limit=4", "eval.benchmarks.2.limit=4"]


def _reproduce(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "scripts" / "reproduce.py"), "flip_test",
                           "--profile", "demo", "--runs", str(tmp_path / "runs"), "--out",
                           str(tmp_path / "out"), *SHORT, *args], cwd=REPO, env=env,
                          capture_output=True, text=True)


@pytest.mark.slow
def test_check_reproduces_a_stored_row_and_seed_exactly(tmp_path, tiny_model_dir):
    made = _reproduce(tmp_path, "--rows", "grpo")
    assert made.returncode == 0, made.stderr[-2000:]
    checked = _reproduce(tmp_path, "--check", "grpo", "0")
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    assert "MATCH" in checked.stdout
    # a stored value off by one ulp is a mismatch, named with both values
    table = tmp_path / "out" / "table.csv"
    text = table.read_text().splitlines()
    rows = list(csv.DictReader(text[1:]))
    stored = float(rows[0]["average"])
    rows[0]["average"] = repr(stored + abs(stored) * 2 ** -52 + 1e-300)
    with table.open("w", newline="") as f:
        f.write(text[0] + "\n")
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tampered = _reproduce(tmp_path, "--check", "grpo", "0")
    assert tampered.returncode == 1
    assert "MISMATCH" in tampered.stdout and "average: stored" in tampered.stdout
    assert "hardware differs" not in tampered.stdout  # the file names this machine
    # the same mismatch against a file that names another machine says the hardware differs
    other = "AMD EPYC 7B12 (x86_64: avx2 fma); kernels: torch AVX2, MKL_CBWR=AVX2, " \
            "ONEDNN_MAX_CPU_ISA=AVX2, vLLM _C_AVX2"
    lines = table.read_text().splitlines()
    head = lines[0].split(". Machine: `")[0] + f". Machine: `{other}`"
    table.write_text("\n".join([head, *lines[1:]]) + "\n")
    moved = _reproduce(tmp_path, "--check", "grpo", "0")
    assert moved.returncode == 1
    first = moved.stdout.splitlines()[0]
    assert first.startswith(f"MISMATCH: the hardware differs: stored on {other}; re-run on ")
    assert "average: stored" in moved.stdout
