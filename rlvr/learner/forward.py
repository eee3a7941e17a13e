"""The learner's forward pass: response-token log-probs and entropies of a causal LM."""

from __future__ import annotations

from torch import Tensor, nn

from rlvr.learner.batching import SequenceBatch, scatter_response
from rlvr.learner.logprobs import fused_logprob_entropy


def response_logprobs(model: nn.Module, batch: SequenceBatch, temperature: float = 1.0,
                      chunk: int = 1024) -> tuple[Tensor, Tensor]:
    """Per-token log-probs and entropies of the response tokens of ``batch``.

    Runs the model once with logits for the last position only, takes the final hidden states
    from the decoder's last norm (a forward hook: nothing extra is stored), keeps the n that
    predict response tokens, and applies the output layer chunk by chunk
    (rlvr/learner/logprobs.py): the [b, L, V] logits are never formed. Going through the model's
    own forward keeps PEFT wrappers and FSDP's unshard/reshard hooks in play (the FSDP root stays
    unsharded after forward, so the output layer's full weight is at hand).

    Returns:
        (logp [b, T], entropy [b, T]) float32, zero on padding.
    """
    captured: list[Tensor] = []
    hook = model.get_decoder().norm.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False,
              logits_to_keep=1)
    finally:
        hook.remove()
    selected = captured[0][batch.hidden_rows, batch.hidden_cols]
    weight = model.get_output_embeddings().weight
    logp, entropy = fused_logprob_entropy(selected, weight, batch.targets, temperature, chunk)
    return scatter_response(logp, batch), scatter_response(entropy, batch)
