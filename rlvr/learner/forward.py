"""The learner's forward pass: response-token log-probs and entropies of a causal LM."""

from __future__ import annotations

from torch import Tensor, nn

from rlvr.learner.batching import SequenceBatch, scatter_response
from rlvr.learner.logprobs import fused_logprob_entropy


def response_logprobs(model: nn.Module, batch: SequenceBatch, temperature: float = 1.0,
                      chunk: int = 1024) -> tuple[Tensor, Tensor]:
    """Per-token log-probs and entropies of the response tokens of ``batch``.

    Runs the decoder once, keeps only the n hidden states that predict response tokens, and
    applies the output layer chunk by chunk (rlvr/learner/logprobs.py): the [b, L, V] logits
    are never formed. Works for plain and PEFT-wrapped Hugging Face causal LMs.

    Returns:
        (logp [b, T], entropy [b, T]) float32, zero on padding.
    """
    hidden = model.get_decoder()(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False
    ).last_hidden_state
    selected = hidden[batch.hidden_rows, batch.hidden_cols]
    weight = model.get_output_embeddings().weight
    logp, entropy = fused_logprob_entropy(selected, weight, batch.targets, temperature, chunk)
    return scatter_response(logp, batch), scatter_response(entropy, batch)
