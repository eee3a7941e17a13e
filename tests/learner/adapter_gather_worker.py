"""Run by ``torchrun`` (2 gloo ranks): a LoRA policy sharded with FSDP2 syncs its adapter to the
vLLM engine (``rollout.lora_sync=adapter``; a stand-in ``vllm.LLM`` that records nothing) and
writes a checkpoint, while every gather of a sharded tensor (``distributed.full_tensor`` on a
DTensor) is counted in bytes. Rank 0 writes ``{"sync": bytes, "checkpoint": bytes,
"adapter_files": [...]}`` to argv[1] as JSON; argv[2] is a scratch run directory.

The model is a random Qwen2 (``CONFIG``) with a LoRA adapter (``LORA``), shared with the test.
"""

import json
import sys
import types
from pathlib import Path

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import get_peft_model
from transformers import Qwen2Config, Qwen2ForCausalLM

from rlvr.checkpoint import save_checkpoint
from rlvr.config import AlgorithmConfig, LearnerConfig, RolloutConfig
from rlvr.learner import distributed
from rlvr.learner.learner import Learner

CONFIG = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
              tie_word_embeddings=False)
LORA = dict(r=4, target_modules=["q_proj", "v_proj", "down_proj"])


def _fake_vllm() -> None:
    """``vllm.LLM`` and ``LoRARequest`` stand-ins: the adapter path is all the engine needs."""
    vllm = types.ModuleType("vllm")
    vllm.LLM = lambda **kwargs: types.SimpleNamespace(kwargs=kwargs)
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda name, version, path: (name, version, path)
    sys.modules.update({"vllm": vllm, "vllm.lora": types.ModuleType("vllm.lora"),
                        "vllm.lora.request": request})


def main(out: str, run_dir: str) -> None:
    from torch.distributed.tensor import DTensor

    from rlvr.rollout.vllm_engine import VLLMEngine

    distributed.init_from_env(torch.device("cpu"))
    torch.manual_seed(0)
    policy = get_peft_model(Qwen2ForCausalLM(Qwen2Config(**CONFIG)).float(),
                            PeftLoraConfig(lora_alpha=8, task_type="CAUSAL_LM", **LORA))
    learner = Learner(policy, LearnerConfig(strategy="fsdp"), AlgorithmConfig(),
                      vocab_size=CONFIG["vocab_size"], pad_id=0, temperature=1.0,
                      max_new_tokens=8, total_steps=1, tis_cap=None, seed=0)
    gathered = {"bytes": 0}
    whole = distributed.full_tensor

    def counting(value: torch.Tensor) -> torch.Tensor:
        if isinstance(value, DTensor):
            gathered["bytes"] += value.numel() * value.element_size()
        return whole(value)

    distributed.full_tensor = counting
    _fake_vllm()
    engine = VLLMEngine("unused", RolloutConfig(lora_sync="adapter"), dtype="float32",
                        max_model_len=64, seed=0, lora_rank=LORA["r"], on_cpu=False)
    engine.sync_weights(policy)
    sync = gathered["bytes"]
    adapter_files = sorted(p.name for p in Path(engine._lora_request[2]).iterdir())
    gathered["bytes"] = 0
    checkpoint = save_checkpoint(Path(run_dir), 1, policy, None, learner, {}, keep=1)
    if distributed.rank() == 0:
        Path(out).write_text(json.dumps({
            "sync": sync, "checkpoint": gathered["bytes"], "adapter_files": adapter_files,
            "checkpoint_files": sorted(p.name for p in (checkpoint / "policy").iterdir())}))
    engine.close()
    distributed.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
