"""One stop-token set and one context length for training and evaluation."""

import json

from transformers import AutoTokenizer

from rlvr.config import BenchmarkEvalConfig, RolloutConfig
from rlvr.rollout.limits import max_model_len, stop_token_ids


def test_stop_tokens_are_the_tokenizer_eos_and_the_generation_config_eos(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    generation = json.loads((tiny_model_dir / "generation_config.json").read_text())
    expected = sorted({tokenizer.eos_token_id, *generation["eos_token_id"]})
    assert stop_token_ids(str(tiny_model_dir), tokenizer) == expected


def test_stop_tokens_fall_back_to_config_json(tiny_model_dir, tmp_path):
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_text((tiny_model_dir / name).read_text())
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    config_eos = json.loads((tmp_path / "config.json").read_text())["eos_token_id"]
    assert stop_token_ids(str(tmp_path), tokenizer) == sorted({tokenizer.eos_token_id,
                                                               config_eos})


def test_context_is_longest_prompt_plus_most_new_tokens():
    benchmarks = [BenchmarkEvalConfig(max_new_tokens=100), BenchmarkEvalConfig()]
    assert max_model_len(RolloutConfig(max_new_tokens=64), benchmarks, [10, 37, 5]) == 137
    assert max_model_len(RolloutConfig(max_new_tokens=256), benchmarks, [10, 37]) == 293
    assert max_model_len(RolloutConfig(max_model_len=512), benchmarks, [10]) == 512
