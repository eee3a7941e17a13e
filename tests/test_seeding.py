"""The seed formulas the committed results depend on, pinned to hand-computed values."""

from rlvr.data.prompts import PromptStream
from rlvr.seeding import eval_seed, stream_seed


def test_stream_seed_is_seed_times_a_million_and_three_plus_counter():
    assert stream_seed(0, 7) == 7
    assert stream_seed(3, 5) == 3_000_014
    assert stream_seed(2, 32) == 2_000_038


def test_eval_seed_is_seed_plus_7919_per_step():
    assert eval_seed(0, 0) == 0
    assert eval_seed(2, 10) == 79_192


def test_prompt_order_uses_the_stream_seed():
    import torch

    stream = PromptStream(10, seed=3)
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(3_000_000 + 9 + 1))
    stream.position = 10  # epoch 1
    assert stream.take(10) == expected.tolist()
