"""After an optimiser step, the engine scores fixed sequences exactly as the learner does."""

import pytest
import torch
from transformers import AutoTokenizer

from rlvr.config import AlgorithmConfig, LearnerConfig, LoraConfig, RolloutConfig
from rlvr.data import arith
from rlvr.learner.batching import collate
from rlvr.learner.forward import response_logprobs
from rlvr.learner.learner import Learner, TrainBatch
from rlvr.learner.policy import load_policy
from rlvr.rollout.base import SamplingSpec

TOLERANCE = 1e-4


def _sequences(tokenizer, count=6):
    """Fixed (prompt, response) token ids: arith problems with their reference solutions."""
    pairs = arith.train_set([1, 2, 3], count, seed=99, eval_size=10)
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": p.problem}],
                                             tokenize=False, add_generation_prompt=True)
               for p, _ in pairs]
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer([s for _, s in pairs], add_special_tokens=False)["input_ids"]
    return prompt_ids, response_ids


def _one_update(policy, prompts, responses, lr):
    """One GRPO step with fixed advantages, as the trainer would do it."""
    width = max(map(len, responses))
    mask = torch.zeros(len(responses), width)
    for i, r in enumerate(responses):
        mask[i, : len(r)] = 1
    batch = TrainBatch(prompts, responses, torch.zeros_like(mask), mask,
                       torch.tensor([1.0, -1.0] * (len(prompts) // 2)))
    learner = Learner(policy, LearnerConfig(lr=lr), AlgorithmConfig(), vocab_size=1,
                      pad_id=0, temperature=1.0, max_new_tokens=width, total_steps=1,
                      tis_cap=None, seed=0)
    learner.update(batch, {})


def _learner_logprobs(policy, prompts, responses, pad_id):
    with torch.no_grad():
        logp, _ = response_logprobs(policy, collate(prompts, responses, pad_id))
    return [logp[i, : len(r)] for i, r in enumerate(responses)]


def _max_diff(engine_scores, reference):
    return max(float((torch.tensor(s) - r).abs().max())
               for s, r in zip(engine_scores, reference, strict=True))


def _check_sync(engine, policy, tokenizer, lr=5e-3):
    prompts, responses = _sequences(tokenizer)
    sequences = [p + r for p, r in zip(prompts, responses, strict=True)]
    lengths = list(map(len, prompts))
    before = engine.score(sequences, lengths)
    assert _max_diff(before, _learner_logprobs(policy, prompts, responses,
                                               tokenizer.pad_token_id)) < TOLERANCE
    _one_update(policy, prompts, responses, lr)
    engine.sync_weights(policy)
    after = engine.score(sequences, lengths)
    assert _max_diff(after, _learner_logprobs(policy, prompts, responses,
                                              tokenizer.pad_token_id)) < TOLERANCE
    moved = _max_diff(after, [torch.tensor(b) for b in before])
    assert moved > 100 * TOLERANCE, f"the update did not reach the engine (moved {moved:.2e})"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_vllm_full_weight_sync(tiny_model_dir, tokenizer):
    from rlvr.rollout.vllm_engine import VLLMEngine

    policy = load_policy(str(tiny_model_dir), "float32", LoraConfig(), torch.device("cpu"))
    engine = VLLMEngine(str(tiny_model_dir), RolloutConfig(), dtype="float32", max_model_len=160,
                        seed=0)
    _check_sync(engine, policy, tokenizer)
    rollouts = engine.generate([_sequences(tokenizer, 2)[0][0]],
                               SamplingSpec(n=4, temperature=1.0, top_p=1.0, max_new_tokens=32,
                                            seed=0))
    prompts = [_sequences(tokenizer, 2)[0][0]] * 4
    learner = _learner_logprobs(policy, prompts, rollouts.response_ids, tokenizer.pad_token_id)
    assert _max_diff(rollouts.logprobs, learner) < TOLERANCE, "sampler log-probs after the sync"


@pytest.mark.parametrize("lora_sync", ["adapter", "merged"])
def test_vllm_lora_sync(tiny_model_dir, tokenizer, lora_sync):
    from rlvr.rollout.vllm_engine import VLLMEngine

    lora = LoraConfig(enabled=True, r=8, alpha=16)
    policy = load_policy(str(tiny_model_dir), "float32", lora, torch.device("cpu"))
    engine = VLLMEngine(str(tiny_model_dir), RolloutConfig(lora_sync=lora_sync),
                        dtype="float32", max_model_len=160, seed=0, lora_rank=8)
    engine.sync_weights(policy)
    _check_sync(engine, policy, tokenizer, lr=2e-2)
    engine.close()


def test_hf_engine_samples_from_the_updated_policy(tiny_model_dir, tokenizer):
    from rlvr.rollout.hf_engine import HFEngine

    policy = load_policy(str(tiny_model_dir), "float32", LoraConfig(), torch.device("cpu"))
    engine = HFEngine(policy, tokenizer, [tokenizer.eos_token_id])
    _check_sync(engine, policy, tokenizer)
