"""make check-presets: every preset runs on CPU with its tiny stand-in, all else kept."""

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import check_presets  # noqa: E402

# the papers' models: (architecture, tied embeddings) from their Hugging Face config.json
ARCHITECTURES = {
    "Qwen/Qwen3-4B": ("qwen3", True),
    "Qwen/Qwen2.5-1.5B-Instruct": ("qwen2", True),
    "Qwen/Qwen2.5-3B-Instruct": ("qwen2", True),
    "Qwen/Qwen2.5-Math-1.5B": ("qwen2", True),
    "Qwen/Qwen2.5-7B": ("qwen2", False),
    "Qwen/Qwen2.5-Math-7B": ("qwen2", False),
}
SHRUNK = {"total_steps", "prompts_per_step", "rollout", "eval", "data", "model", "device",
          "logger", "resume", "hydra", "output_dir"}


def test_every_paper_model_has_a_stand_in_of_its_architecture_and_tying():
    models = {OmegaConf.load(p).path for p in (REPO / "conf" / "model").glob("*.yaml")}
    assert models - {"tiny"} == set(ARCHITECTURES)
    for path, (architecture, tied) in ARCHITECTURES.items():
        stand_in = OmegaConf.load(REPO / "conf" / "model" / f"{check_presets.STAND_INS[path]}.yaml")
        tiny = stand_in.get("tiny", {})
        assert tiny.get("architecture", "qwen2") == architecture, path
        assert tiny.get("tie_word_embeddings", False) == tied, path


@pytest.mark.parametrize("preset", check_presets.presets())
def test_the_check_keeps_everything_but_the_model_and_the_sizes(preset):
    overrides, original = check_presets.check_overrides(preset)
    checked = check_presets._compose(overrides)
    assert checked.model.path == "tiny"
    assert checked.model.dtype == original.model.dtype
    assert checked.model.family == original.model.family
    architecture, tied = ARCHITECTURES[original.model.path]
    assert checked.model.tiny.architecture == architecture
    assert checked.model.tiny.tie_word_embeddings == tied
    for key in ("algorithm", "learner"):
        assert checked[key] == original[key], key
    for key in original:
        if key not in SHRUNK:
            assert checked[key] == original[key], key
    rollouts = checked.prompts_per_step * checked.rollout.n
    assert rollouts % checked.learner.mini_batches == 0
    assert checked.rollout.n == original.rollout.n
    assert checked.rollout.temperature == original.rollout.temperature
    assert [(b.name, b.k, b.temperature) for b in checked.eval.benchmarks] == \
        [(b.name, b.k, b.temperature) for b in original.eval.benchmarks]


@pytest.mark.slow
def test_make_check_presets_passes():
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "check_presets.py")],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"{len(check_presets.presets())}/{len(check_presets.presets())} presets passed" \
        in proc.stdout
