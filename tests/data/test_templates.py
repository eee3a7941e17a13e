"""Prompt templates per model family: the right messages and chat-template options."""

import pytest

from rlvr.data.templates import BOXED_INSTRUCTION, render_prompt


class RecordingTokenizer:
    """Stands in for a hub tokenizer: records what ``apply_chat_template`` was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[dict], dict]] = []

    def apply_chat_template(self, messages, **kwargs):
        self.calls.append((messages, kwargs))
        return "|".join(f"{m['role']}:{m['content']}" for m in messages)


def test_qwen25_instruct_and_math_use_system_prompt_and_boxed_instruction():
    for family in ("qwen2.5-instruct", "qwen2.5-math"):
        tokenizer = RecordingTokenizer()
        render_prompt("What is 2+3?", family, tokenizer)
        messages, kwargs = tokenizer.calls[0]
        assert [m["role"] for m in messages] == ["system", "user"]
        assert messages[1]["content"] == f"What is 2+3?\n{BOXED_INSTRUCTION}"
        assert kwargs["add_generation_prompt"] is True and kwargs["tokenize"] is False


def test_qwen3_disables_thinking():
    tokenizer = RecordingTokenizer()
    render_prompt("What is 2+3?", "qwen3", tokenizer)
    messages, kwargs = tokenizer.calls[0]
    assert kwargs["enable_thinking"] is False
    assert messages == [{"role": "user", "content": f"What is 2+3?\n{BOXED_INSTRUCTION}"}]


def test_base_template_is_plain_text():
    text = render_prompt("What is 2+3?", "base", tokenizer=None)
    assert text.startswith("Question: What is 2+3?\n") and "\\boxed{}" in text
    assert "<|im_start|>" not in text


def test_tiny_template_is_chatml(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = render_prompt("What is 2+3?", "tiny", tokenizer)
    assert text == "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="unknown model family 'llama'"):
        render_prompt("x", "llama", RecordingTokenizer())
