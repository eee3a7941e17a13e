"""The embedded tiny models: stable cache key, the Qwen3-style template, tied stand-ins."""

import json

from transformers import AutoConfig, AutoTokenizer

from rlvr.config import ArithConfig, TinyModelConfig
from rlvr.data import arith
from rlvr.data.templates import render_prompt
from rlvr.tiny import ARCHITECTURES, recipe_hash, train_tokenizer

# the cache key of model=tiny before the architecture and tying fields existed
DEFAULT_RECIPE_HASH = "ffe099d96d31"


def test_new_recipe_fields_leave_the_default_cache_key_unchanged():
    assert recipe_hash(TinyModelConfig(), ArithConfig()) == DEFAULT_RECIPE_HASH
    variants = {recipe_hash(TinyModelConfig(**kw), ArithConfig()) for kw in (
        {"tie_word_embeddings": True}, {"architecture": "qwen3"},
        {"architecture": "qwen3", "tie_word_embeddings": True})}
    assert len(variants) == 3 and DEFAULT_RECIPE_HASH not in variants


def test_qwen3_template_ends_in_an_empty_think_block_only_without_thinking():
    corpus = [f"{p.problem}\n{s}" for p, s in arith.train_set([1, 2], 200, 0, 20)]
    tokenizer = train_tokenizer(corpus, 300, ARCHITECTURES["qwen3"])
    prompt = render_prompt("What is 2 + 3?", "qwen3", tokenizer)
    assert prompt.startswith("<|im_start|>user\nWhat is 2 + 3?\nPlease reason step by step")
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    thinking = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                             add_generation_prompt=True)
    assert thinking == "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n"
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_tokens_to_ids("<think>") in ids


def test_stand_ins_have_their_architecture_tying_and_tokenizer(tiny_qwen3_dir, tiny_tied_dir,
                                                                tiny_model_dir):
    for path, model_type, tied in ((tiny_qwen3_dir, "qwen3", True),
                                   (tiny_tied_dir, "qwen2", True),
                                   (tiny_model_dir, "qwen2", False)):
        config = AutoConfig.from_pretrained(path)
        assert (config.model_type, config.tie_word_embeddings) == (model_type, tied), path
        assert json.loads((path / "rlvr_tiny.json").read_text())["probe_greedy_accuracy"] > 0.3
    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    prompt = render_prompt("Ana has 3 cups and gets 4 more.", "qwen3", tokenizer)
    assert prompt.endswith("<think>\n\n</think>\n\n")
    assert tokenizer.decode(tokenizer(prompt)["input_ids"]) == prompt
