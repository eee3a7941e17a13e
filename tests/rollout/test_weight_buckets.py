"""The learner's weights for the engine: checkpoint names, a tied lm_head once, the engine's
dtype, fetched only when the loader (a tensor) or the file writer (a bucket of at most
``sync_bucket_mb``) reaches them."""

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from rlvr.config import ConfigError, RolloutConfig
from rlvr.learner.policy import EngineTensor, engine_tensors
from rlvr.rollout.weight_buckets import fetch_buckets, plan_buckets, stream_tensors


def _model(tied: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    return Qwen2ForCausalLM(Qwen2Config(
        vocab_size=32, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, intermediate_size=32, tie_word_embeddings=tied))


def test_a_tied_lm_head_is_sent_once_under_the_embeddings_name():
    names = [t.name for t in engine_tensors(_model(tied=True))]
    assert "lm_head.weight" not in names and names.count("model.embed_tokens.weight") == 1
    untied = [t.name for t in engine_tensors(_model(tied=False))]
    assert set(untied) == set(_model(tied=False).state_dict())


def test_tensors_are_cast_to_the_engine_dtype_with_sizes_in_it():
    model = _model(tied=False)
    state = model.state_dict()
    for item in engine_tensors(model, torch.bfloat16):
        tensor = item.fetch()
        assert tensor.dtype == torch.bfloat16 and item.nbytes == state[item.name].numel() * 2
        assert torch.equal(tensor, state[item.name].to(torch.bfloat16)), item.name


def _items(sizes: list[int], fetched: list[str]) -> list[EngineTensor]:
    def fetch(name: str, size: int):
        return lambda: fetched.append(name) or torch.zeros(size, dtype=torch.uint8)
    return [EngineTensor(f"t{i}", size, fetch(f"t{i}", size)) for i, size in enumerate(sizes)]


def test_buckets_hold_at_most_the_bucket_a_larger_tensor_alone_in_order():
    buckets = plan_buckets(_items([3, 4, 2, 9, 1, 5], []), bucket_bytes=6)
    assert [[t.name for t in b] for b in buckets] == [["t0"], ["t1", "t2"], ["t3"],
                                                      ["t4", "t5"]]


def test_a_bucket_is_fetched_only_when_the_writer_reaches_it():
    fetched: list[str] = []
    buckets = fetch_buckets(_items([3, 3, 3, 3], fetched), bucket_bytes=6)
    assert fetched == []
    assert [name for name, _ in next(buckets)] == ["t0", "t1"] and fetched == ["t0", "t1"]
    assert [name for name, _ in next(buckets)] == ["t2", "t3"] and len(fetched) == 4


def test_in_process_a_tensor_is_fetched_when_the_loader_asks_for_it():
    fetched: list[str] = []
    stream = stream_tensors(_items([3, 3, 3], fetched))
    assert fetched == []
    assert next(stream)[0] == "t0" and fetched == ["t0"]
    assert next(stream)[0] == "t1" and fetched == ["t0", "t1"]


def test_sync_bucket_mb_must_be_positive():
    with pytest.raises(ConfigError, match=r"rollout\.sync_bucket_mb must be >= 1"):
        RolloutConfig(sync_bucket_mb=0).validate()
