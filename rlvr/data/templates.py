"""Prompt templates: the one place that maps a model family to how a problem is asked."""

from __future__ import annotations

BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

FAMILIES = ("tiny", "qwen2.5-instruct", "qwen2.5-math", "qwen3", "base")


def render_prompt(problem: str, family: str, tokenizer) -> str:
    """The prompt text for ``problem`` in ``family``'s format, ready to tokenise (no extra BOS).

    - ``qwen2.5-instruct`` / ``qwen2.5-math``: chat template, Qwen's system prompt, the problem
      followed by the boxed-answer instruction (the Qwen2.5-Math evaluation prompt);
    - ``qwen3``: chat template with thinking disabled (``enable_thinking=False``);
    - ``base``: plain text for base models, e.g. Qwen2.5-7B;
    - ``tiny``: the problem as the only user message of the tiny model's ChatML template.
    """
    if family == "tiny":
        messages = [{"role": "user", "content": problem}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if family in ("qwen2.5-instruct", "qwen2.5-math"):
        messages = [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": f"{problem}\n{BOXED_INSTRUCTION}"},
        ]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if family == "qwen3":
        messages = [{"role": "user", "content": f"{problem}\n{BOXED_INSTRUCTION}"}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                             enable_thinking=False)
    if family == "base":
        return f"Question: {problem}\n{BOXED_INSTRUCTION}\nAnswer: Let's think step by step."
    raise ValueError(f"unknown model family {family!r}; known: {list(FAMILIES)}")
