"""Per-token log-probabilities and entropies of response tokens, without materialising logits.

For the selected hidden states h [n, H] and the output layer W [V, H], the sampling distribution is
softmax(z) with z = h W^T / tau (tau: the sampling temperature, METHODS.md notation). This module
returns, per token,

    logp_t = z_{y_t} - logsumexp(z)                 (log-probability of the taken token)
    H_t    = logsumexp(z) - sum_v softmax(z)_v z_v  (entropy of the sampling distribution)

computed chunk by chunk in float32. The backward pass recomputes each chunk's logits instead of
keeping them, with the closed-form gradients

    dlogp/dz = onehot(y) - p,        dH/dz = -p * (log p + H),

so peak memory grows with ``chunk x V``, not with ``batch x length x V``.

The matmuls run in the dtype of ``hidden`` and ``weight`` (under autocast the caller casts both
to the autocast dtype): the forward's ``h W^T``, the backward's recomputed ``h W^T`` and
``grad_h = grad_z W``. The output-layer gradient ``grad_W = sum_chunks grad_z^T h`` is summed
over chunks in a float32 buffer; each chunk's product is taken

- in float32 (``grad_z`` float32, ``h`` cast up) on the CPU, or when the weight is float32;
- on CUDA with a low-precision weight, in the weight's dtype (tensor cores, float32 accumulation
  inside the GEMM, one rounding of the chunk's product to that dtype before the float32 sum), as
  the forward does (a float32 GEMM of ``V x c x H`` per chunk at the highest matmul precision
  was estimated, not measured, at 15-20 % of a 4B learner step on an H100; issue 23). The
  chunk's product is a ``V x H`` temporary in that dtype. ``weight_grad_in_compute_dtype`` forces
  either path (tests/learner/test_logprobs.py bounds the difference on CPU).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _chunk_stats(h: Tensor, weight: Tensor, targets: Tensor, inv_tau: float
                 ) -> tuple[Tensor, Tensor]:
    """(logp [c], entropy [c]) of one chunk, through two [c, V] float32 buffers."""
    log_probs = torch.log_softmax((h @ weight.t()).float() * inv_tau, dim=-1)
    logp = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = -log_probs.exp().mul_(log_probs).sum(-1)
    return logp, entropy


def _chunk_grad(h: Tensor, weight: Tensor, targets: Tensor, inv_tau: float, entropy: Tensor,
                grad_logp: Tensor | None, grad_entropy: Tensor | None) -> Tensor:
    """d(loss)/d(h W^T) of one chunk, in place in two [c, V] float32 buffers:
    (g_logp * (onehot - p) - g_H * p * (log p + H)) / tau."""
    log_probs = torch.log_softmax((h @ weight.t()).float() * inv_tau, dim=-1)
    probs = log_probs.exp()
    grad_z = log_probs
    if grad_entropy is None:
        grad_z.zero_()
    else:
        grad_z.add_(entropy.unsqueeze(-1)).mul_(probs).mul_(-grad_entropy.unsqueeze(-1))
    if grad_logp is not None:
        grad_z.sub_(probs.mul_(grad_logp.unsqueeze(-1)))
        grad_z.scatter_add_(-1, targets.unsqueeze(-1), grad_logp.unsqueeze(-1))
    return grad_z.mul_(inv_tau)


class _FusedLogProbEntropy(torch.autograd.Function):
    """Chunked logp and entropy with recomputation in backward (see module docstring)."""

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, targets: Tensor, inv_tau: float,
                chunk: int, low_precision_grad_w: bool) -> tuple[Tensor, Tensor]:
        n = hidden.shape[0]
        logp = torch.empty(n, dtype=torch.float32, device=hidden.device)
        entropy = torch.empty_like(logp)
        with torch.no_grad():
            for start in range(0, n, chunk):
                sl = slice(start, start + chunk)
                logp[sl], entropy[sl] = _chunk_stats(hidden[sl], weight, targets[sl], inv_tau)
        ctx.save_for_backward(hidden, weight, targets, entropy)
        ctx.inv_tau, ctx.chunk, ctx.low_precision_grad_w = inv_tau, chunk, low_precision_grad_w
        return logp, entropy

    @staticmethod
    def backward(ctx, grad_logp: Tensor | None, grad_entropy: Tensor | None):
        hidden, weight, targets, entropy = ctx.saved_tensors
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) \
            if need_w else None
        for start in range(0, hidden.shape[0], ctx.chunk):
            sl = slice(start, start + ctx.chunk)
            h = hidden[sl]
            grad_z = _chunk_grad(h, weight, targets[sl], ctx.inv_tau, entropy[sl],
                                 None if grad_logp is None else grad_logp[sl],
                                 None if grad_entropy is None else grad_entropy[sl])
            if need_h:
                grad_h[sl] = (grad_z.to(weight.dtype) @ weight).to(hidden.dtype)
            if need_w and ctx.low_precision_grad_w:
                grad_w.add_(grad_z.t().to(weight.dtype) @ h.to(weight.dtype))
            elif need_w:
                grad_w.addmm_(grad_z.t(), h.float())
        if need_w:
            grad_w = grad_w.to(weight.dtype)
        return grad_h, grad_w, None, None, None, None


def fused_logprob_entropy(hidden: Tensor, weight: Tensor, targets: Tensor, temperature: float = 1.0,
                          chunk: int = 1024, weight_grad_in_compute_dtype: bool | None = None
                          ) -> tuple[Tensor, Tensor]:
    """Log-probability of ``targets`` and entropy under softmax(hidden @ weight.T / temperature).

    Args:
        hidden: [n, H] final hidden states at the positions that predict ``targets``.
        weight: [V, H] output embedding (lm_head) weight.
        targets: [n] int64 token ids.
        temperature: the sampling temperature (the learner scores the distribution it sampled).
        chunk: tokens per chunk; peak extra memory is about 2 x chunk x V float32 values.
        weight_grad_in_compute_dtype: take each chunk's ``grad_z^T h`` in ``weight.dtype``
            (None: on CUDA when ``weight`` is not float32; see the module docstring).

    Returns:
        (logp [n], entropy [n]) in float32, differentiable w.r.t. ``hidden`` and ``weight``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if weight_grad_in_compute_dtype is None:
        weight_grad_in_compute_dtype = weight.is_cuda and weight.dtype != torch.float32
    low_precision = weight_grad_in_compute_dtype and weight.dtype != torch.float32
    return _FusedLogProbEntropy.apply(hidden, weight, targets, 1.0 / temperature, chunk,
                                      low_precision)


def naive_logprob_entropy(hidden: Tensor, weight: Tensor, targets: Tensor,
                          temperature: float = 1.0) -> tuple[Tensor, Tensor]:
    """Reference path with full float32 logits [n, V] kept for autograd (tests, benchmarks)."""
    logits = (hidden @ weight.t()).float() / temperature
    log_probs = torch.log_softmax(logits, dim=-1)
    logp = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    return logp, entropy
