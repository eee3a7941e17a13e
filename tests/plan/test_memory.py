"""The memory plan's terms against real tensors, the batching code and measured peaks."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from rlvr.config import ConfigError, ModelConfig
from rlvr.learner.batching import plan_micro_batches
from rlvr.plan.memory import (
    LearnerSetting,
    lora_tensors,
    plan_learner,
    sharded_numel,
    tokens_per_micro_batch,
)
from rlvr.plan.shapes import BUILT_IN, ModelShape, resolve_shape

REPO = Path(__file__).resolve().parents[2]
SHAPES = [ModelShape("qwen2", 97, 32, 48, 2, 4, 2, 8, False),
          ModelShape("qwen2", 97, 32, 48, 3, 4, 1, 8, True),
          ModelShape("qwen3", 101, 48, 64, 2, 4, 2, 16, True)]


def _shape_id(shape: ModelShape) -> str:
    return f"{shape.architecture}-tied{shape.tie_word_embeddings}"


def _build(shape: ModelShape, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    config = AutoConfig.for_model(
        shape.architecture, vocab_size=shape.vocab_size, hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size, num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads, num_key_value_heads=shape.num_kv_heads,
        head_dim=shape.head_dim, tie_word_embeddings=shape.tie_word_embeddings)
    return AutoModelForCausalLM.from_config(config, dtype=dtype)


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


@pytest.mark.parametrize("shape", SHAPES, ids=_shape_id)
def test_shape_lists_every_parameter_of_the_built_model(shape):
    model = _build(shape)
    assert dict(shape.tensors()) == {n: tuple(p.shape) for n, p in model.named_parameters()}


@pytest.mark.parametrize("shape", SHAPES, ids=_shape_id)
def test_full_fine_tune_weight_gradient_optimiser_bytes_are_exact(shape):
    model = _build(shape)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(input_ids=torch.randint(0, shape.vocab_size, (2, 5)),
          labels=torch.randint(0, shape.vocab_size, (2, 5))).loss.backward()
    grads = _bytes(p.grad for p in model.parameters())
    optimizer.step()
    state = _bytes(t for s in optimizer.state.values() for t in s.values())
    plan = plan_learner(shape, LearnerSetting(reference=True))
    assert plan.weights == _bytes(model.parameters()) == 4 * shape.num_parameters()
    assert plan.gradients == grads
    assert plan.optimizer == state
    assert plan.reference == plan.weights


def test_lora_weight_gradient_optimiser_bytes_are_exact():
    from peft import LoraConfig, get_peft_model

    shape = SHAPES[2]
    targets = ["q_proj", "v_proj", "down_proj"]
    model = get_peft_model(_build(shape, torch.bfloat16), LoraConfig(
        r=4, lora_alpha=8, target_modules=targets, task_type="CAUSAL_LM"),
        autocast_adapter_dtype=True)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {p.dtype for p in trainable} == {torch.float32}
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    sum(p.float().sum() for p in trainable).backward()
    grads = _bytes(p.grad for p in trainable)
    optimizer.step()
    plan = plan_learner(shape, LearnerSetting(dtype="bfloat16", lora=True, lora_r=4,
                                              lora_targets=tuple(targets), reference=True))
    assert len(lora_tensors(shape, 4, targets)) == len(trainable)
    assert plan.weights == _bytes(model.parameters())
    assert plan.gradients == grads
    assert plan.optimizer == _bytes(t for s in optimizer.state.values() for t in s.values())
    assert plan.reference == 0  # the adapter is switched off instead of copying the model


def test_fsdp_shards_pad_dim0():
    assert sharded_numel((5, 3), 2) == 9  # ceil(5 / 2) rows of 3
    assert sharded_numel((8, 3), 8) == 3
    assert sharded_numel((7,), 1) == 7
    shape = BUILT_IN["Qwen/Qwen3-4B"]
    one, eight = (plan_learner(shape, LearnerSetting(shards=n)) for n in (1, 8))
    assert one.weights / 8 <= eight.weights <= one.weights / 8 + 4 * 8 * len(shape.tensors()) * 2560
    assert eight.fsdp_unsharded > 0 == one.fsdp_unsharded


@pytest.mark.parametrize("rows,cap,length", [(8, None, 100), (8, 350, 100), (8, 50, 100),
                                             (3, 10_000, 700)])
def test_tokens_per_micro_batch_match_the_learner_batching(rows, cap, length):
    plan = plan_micro_batches([length] * 32, rows, cap)
    assert tokens_per_micro_batch(rows, cap, length) == max(len(mb) for mb in plan) * length


def test_papers_models_have_their_model_card_sizes():
    # model cards: 4.02 B, 1.54 B, 3.09 B, 7.62 B parameters
    cards = {"Qwen/Qwen3-4B": 4.02e9, "Qwen/Qwen2.5-1.5B-Instruct": 1.54e9,
             "Qwen/Qwen2.5-3B-Instruct": 3.09e9, "Qwen/Qwen2.5-7B": 7.62e9}
    for name, count in cards.items():
        assert math.isclose(BUILT_IN[name].num_parameters(), count, rel_tol=4e-3), name


def test_shape_resolution(tmp_path):
    model = _build(SHAPES[1])
    model.config.save_pretrained(tmp_path)
    assert resolve_shape(ModelConfig(path=str(tmp_path))) == SHAPES[1]
    assert resolve_shape(ModelConfig(path="Qwen/Qwen3-4B")) == BUILT_IN["Qwen/Qwen3-4B"]
    tiny = resolve_shape(ModelConfig())
    assert tiny.num_parameters() == sum(p.numel() for p in _build(tiny).parameters())
    with pytest.raises(ConfigError, match="built-in shapes"):
        resolve_shape(ModelConfig(path="nobody/unknown-model"))


def test_planned_peak_within_a_quarter_of_the_measured_cpu_peak():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from memory_plan import CASES, _setting, measure

    case = CASES["tiny-fp32"]
    measured = measure(case)
    plan = plan_learner(case.shape, _setting(case))
    assert (plan.weights, plan.gradients, plan.optimizer) == \
        (measured["weights"], measured["gradients"], measured["optimizer"])
    assert abs(plan.update_peak / measured["peak"] - 1) <= 0.25
