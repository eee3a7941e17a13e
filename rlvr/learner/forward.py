"""The learner's forward pass: response-token log-probs and entropies of a causal LM."""

from __future__ import annotations

import torch
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
    unsharded after forward, so the output layer's full weight is at hand). Under autocast the
    output layer's inputs are cast to the autocast dtype first, so that its forward and its
    recomputing backward multiply in the same precision (and the float32 weight receives its
    gradient through the cast).

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
    device = selected.device.type
    if torch.is_autocast_enabled(device):
        compute = torch.get_autocast_dtype(device)
        selected, weight = selected.to(compute), weight.to(compute)
    logp, entropy = fused_logprob_entropy(selected, weight, batch.targets, temperature, chunk)
    return scatter_response(logp, batch), scatter_response(entropy, batch)
