"""The fused chunked log-prob/entropy op against a float64 autograd reference."""

import pytest
import torch

from rlvr.learner.logprobs import fused_logprob_entropy


def _reference(hidden, weight, targets, tau):
    """float64 autograd through explicit softmax formulas (independent of the op's closed form)."""
    z = hidden.double() @ weight.double().t() / tau
    p = torch.softmax(z, -1)
    logp = torch.log(p.gather(-1, targets[:, None]).squeeze(-1))
    entropy = -(p * torch.log(p)).sum(-1)
    return logp, entropy


@pytest.mark.parametrize("tau,chunk", [(1.0, 3), (0.7, 16), (1.3, 1)])
def test_values_and_gradients_match_float64_reference(tau, chunk):
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(11, 8, generator=g, requires_grad=True)
    weight = torch.randn(37, 8, generator=g, requires_grad=True)
    targets = torch.randint(0, 37, (11,), generator=g)
    c_logp, c_ent = torch.randn(11, generator=g), torch.randn(11, generator=g)

    logp, ent = fused_logprob_entropy(hidden, weight, targets, tau, chunk)
    (logp * c_logp + ent * c_ent).sum().backward()

    h64 = hidden.detach().double().requires_grad_()
    w64 = weight.detach().double().requires_grad_()
    r_logp, r_ent = _reference(h64, w64, targets, tau)
    (r_logp * c_logp.double() + r_ent * c_ent.double()).sum().backward()

    torch.testing.assert_close(logp.double(), r_logp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent.double(), r_ent, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hidden.grad.double(), h64.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(weight.grad.double(), w64.grad, atol=1e-4, rtol=1e-4)


def test_frozen_output_layer_gets_no_gradient():
    hidden = torch.randn(5, 4, requires_grad=True)
    weight = torch.randn(9, 4)
    logp, _ = fused_logprob_entropy(hidden, weight, torch.arange(5), 1.0, 2)
    logp.sum().backward()
    assert hidden.grad is not None and weight.grad is None


def test_uniform_logits_have_entropy_log_vocab():
    hidden = torch.zeros(3, 4)
    weight = torch.randn(10, 4)
    logp, ent = fused_logprob_entropy(hidden, weight, torch.tensor([0, 5, 9]))
    torch.testing.assert_close(ent, torch.full((3,), torch.log(torch.tensor(10.0)).item()))
    torch.testing.assert_close(logp, torch.full((3,), -torch.log(torch.tensor(10.0)).item()))


def _weight_grad(hidden, weight, targets, low_precision, chunk=8):
    h = hidden.detach().clone().requires_grad_()
    w = weight.detach().clone().requires_grad_()
    logp, ent = fused_logprob_entropy(h, w, targets, 0.9, chunk,
                                      weight_grad_in_compute_dtype=low_precision)
    (logp.sum() - 0.1 * ent.sum()).backward()
    return h.grad, w.grad


def test_float32_weight_gradient_is_unchanged_by_the_compute_dtype_switch():
    g = torch.Generator().manual_seed(1)
    hidden, weight = torch.randn(40, 16, generator=g), torch.randn(50, 16, generator=g)
    targets = torch.randint(0, 50, (40,), generator=g)
    base_h, base_w = _weight_grad(hidden, weight, targets, False)
    switched_h, switched_w = _weight_grad(hidden, weight, targets, True)
    assert torch.equal(base_h, switched_h) and torch.equal(base_w, switched_w)


# bfloat16 chunk products are rounded once to 8 significant bits before the float32 sum over
# chunks: each element of grad_W is off by at most ~2^-8 of the sum of |chunk products|.
BF16_GRAD_W_BOUND = 2 ** -7


def test_bfloat16_weight_gradient_within_bound_of_the_float32_product():
    g = torch.Generator().manual_seed(2)
    hidden = torch.randn(64, 32, generator=g).bfloat16()
    weight = (0.3 * torch.randn(97, 32, generator=g)).bfloat16()
    targets = torch.randint(0, 97, (64,), generator=g)
    exact_h, exact_w = _weight_grad(hidden, weight, targets, False)
    fast_h, fast_w = _weight_grad(hidden, weight, targets, True)
    assert exact_w.dtype == fast_w.dtype == torch.bfloat16
    assert torch.equal(exact_h, fast_h)  # grad_h was already taken in the weight's dtype
    scale = exact_w.float().abs().max()
    err = (fast_w.float() - exact_w.float()).abs().max() / scale
    assert 0 < err <= BF16_GRAD_W_BOUND, err
    # and the switch is on by default only for CUDA tensors
    _, default_w = _weight_grad(hidden, weight, targets, None)
    assert torch.equal(default_w, exact_w)
