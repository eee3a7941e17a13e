"""Where generation stops, the same for training and evaluation: one stop-token set and one
context length for the rollout engine."""

from __future__ import annotations

from collections.abc import Iterable

from rlvr.config import BenchmarkEvalConfig, ConfigError, RolloutConfig


def stop_token_ids(model_path: str, tokenizer, *, revision: str | None = None,
                   trust_remote_code: bool = False) -> list[int]:
    """The token ids that end a completion, sorted: the tokenizer's EOS and every EOS id of the
    model's generation config (``generation_config.json``, else ``config.json``), the set
    ``transformers`` and vLLM each stop on for this model."""
    from transformers import AutoConfig, GenerationConfig

    try:
        generation = GenerationConfig.from_pretrained(model_path, revision=revision)
    except OSError:
        generation = GenerationConfig.from_model_config(AutoConfig.from_pretrained(
            model_path, revision=revision, trust_remote_code=trust_remote_code))
    eos = generation.eos_token_id
    ids = set(eos) if isinstance(eos, (list, tuple)) else {eos}
    ids.add(tokenizer.eos_token_id)
    return sorted(i for i in ids if i is not None)


def max_model_len(rollout: RolloutConfig, benchmarks: Iterable[BenchmarkEvalConfig],
                  prompt_lengths: Iterable[int]) -> int:
    """The engine's context length: ``rollout.max_model_len`` if set, else the longest prompt
    plus the most new tokens that training (``rollout.max_new_tokens``) or any benchmark
    (``max_new_tokens``) asks for."""
    if rollout.max_model_len:
        return rollout.max_model_len
    new_tokens = [rollout.max_new_tokens, *(b.max_new_tokens for b in benchmarks
                                            if b.max_new_tokens)]
    return max(prompt_lengths) + max(new_tokens)


def model_context(model_path: str, rollout: RolloutConfig, *, revision: str | None = None,
                  trust_remote_code: bool = False) -> int | None:
    """The most tokens a sequence may have: ``rollout.max_model_len`` if set, else the model's
    ``max_position_embeddings`` (None when its config names none)."""
    if rollout.max_model_len:
        return rollout.max_model_len
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path, revision=revision,
                                        trust_remote_code=trust_remote_code)
    return getattr(config.get_text_config(), "max_position_embeddings", None)


def check_prompt_lengths(name: str, lengths: list[int], new_tokens: int,
                         context: int | None) -> None:
    """Every prompt of ``name`` leaves room for ``new_tokens`` in a ``context``-token window.

    Raises:
        ConfigError: naming how many prompts do not fit, the longest, and the ways out.
    """
    if context is None or not lengths:
        return
    too_long = [n for n in lengths if n + new_tokens > context]
    if too_long:
        raise ConfigError(
            f"{name}: {len(too_long)} of {len(lengths)} prompts leave no room for {new_tokens} "
            f"new tokens in the model's context of {context} tokens (the longest prompt has "
            f"{max(too_long)} tokens); drop long training prompts with data.max_prompt_tokens=N, "
            f"or lower the new tokens")


def drop_long_prompts(prompts: list[list[int]], limit: int | None) -> list[int]:
    """The indices of the prompts of at most ``limit`` tokens (all of them for None)."""
    return [i for i, p in enumerate(prompts) if limit is None or len(p) <= limit]
