"""The learner's update against independent references: micro-batching, forward counts."""

import copy

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from rlvr.batch import StepBatch
from rlvr.checks import register_schema
from rlvr.config import AlgorithmConfig, LearnerConfig, algorithm_config
from rlvr.learner.batching import plan_micro_batches
from rlvr.learner.learner import Learner

V = 40


def _model(seed=0):
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=V, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=1, intermediate_size=32, tie_word_embeddings=False,
                      max_position_embeddings=64)
    return Qwen2ForCausalLM(cfg).float()


def _batch(rows=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(1, V, (int(torch.randint(2, 6, (1,), generator=g)),),
                             generator=g).tolist() for _ in range(rows)]
    responses = [torch.randint(1, V, (int(torch.randint(1, 7, (1,), generator=g)),),
                               generator=g).tolist() for _ in range(rows)]
    width = max(map(len, responses))
    mask = torch.zeros(rows, width)
    for i, r in enumerate(responses):
        mask[i, : len(r)] = 1
    return StepBatch.of_rows(prompts, responses, sampler_logprobs=-mask, response_mask=mask,
                             advantages=torch.randn(rows, generator=g))


def _learner(model, **overrides):
    cfg = LearnerConfig(lr=1e-2, grad_clip=1e9, **overrides)
    return Learner(model, cfg, AlgorithmConfig(), vocab_size=V, pad_id=0, temperature=0.7,
                   max_new_tokens=8, total_steps=10, tis_cap=None, seed=0)


def _reference_lm_head_grad(model, batch, temperature):
    """float64 gradient of the token-mean GRPO loss at ratio 1 (on-policy), with full logits:
    d/dtheta of -(1/N) sum_t A_i logp_t, computed by plain autograd on a float64 copy."""
    ref = copy.deepcopy(model).double()
    total = batch.response_mask.sum()
    loss = 0.0
    for i, (p, r) in enumerate(zip(batch.prompt_ids, batch.response_ids, strict=True)):
        ids = torch.tensor([p + r])
        logits = ref(input_ids=ids).logits[0].double() / temperature
        logp = torch.log_softmax(logits, -1)
        positions = torch.arange(len(p) - 1, len(p) + len(r) - 1)
        taken = logp[positions, torch.tensor(r)]
        loss = loss - (batch.advantages[i].double() * taken).sum() / total
    loss.backward()
    return ref.lm_head.weight.grad


def test_update_gradient_matches_a_float64_full_logits_reference():
    model, batch = _model(), _batch()
    expected = _reference_lm_head_grad(model, batch, temperature=0.7)
    learner = _learner(model, micro_batch_size=4)
    captured = {}
    model.lm_head.weight.register_hook(lambda g: captured.setdefault("grads", []).append(g))
    learner.update(batch, {})
    got = sum(captured["grads"])
    torch.testing.assert_close(got.double(), expected, atol=1e-6, rtol=1e-5)


def _accumulated_grads(learner, batch):
    """The gradients the optimiser sees at its (single) step."""
    seen = []
    step = learner.optimizer.step

    def record(*args, **kwargs):
        seen.append([p.grad.clone() for p in learner.params])
        return step(*args, **kwargs)

    learner.optimizer.step = record
    learner.update(batch, {})
    return seen[0]


@pytest.mark.parametrize("micro,tokens", [(1, None), (4, None), (64, 12), (64, 1)])
def test_micro_batching_accumulates_the_one_batch_gradient(micro, tokens):
    batch = _batch(rows=8, seed=5)
    whole = _accumulated_grads(_learner(_model(), micro_batch_size=64), batch)
    split = _accumulated_grads(
        _learner(_model(), micro_batch_size=micro, max_tokens_per_micro_batch=tokens), batch)
    for a, b in zip(whole, split, strict=True):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=1e-5)


def _count_decoder_calls(model):
    calls = []
    model.get_decoder().register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_on_policy_update_does_no_extra_forward_pass():
    model, batch = _model(), _batch(rows=6)
    calls = _count_decoder_calls(model)
    metrics = _learner(model, micro_batch_size=3).update(batch, {}).metrics
    assert len(calls) == 2, "two micro-batches, one forward each"
    assert metrics["optim/updates"] == 1


def test_off_policy_update_scores_old_logprobs_once_then_steps_per_mini_batch():
    model, batch = _model(), _batch(rows=8)
    calls = _count_decoder_calls(model)
    metrics = _learner(model, micro_batch_size=4, ppo_epochs=2, mini_batches=2).update(
        batch, {}).metrics
    assert len(calls) == 2 + 2 * 2, "old log-probs (2 micro) + 2 epochs x 2 mini x 1 micro"
    assert metrics["optim/updates"] == 4


def test_plan_micro_batches_respects_rows_and_token_budget():
    lengths = [5, 9, 2, 9, 4, 1]
    assert plan_micro_batches(lengths, 4) == [[0, 1, 2, 3], [4, 5]]
    plan = plan_micro_batches(lengths, 8, max_tokens=18)
    assert sorted(i for mb in plan for i in mb) == list(range(6))
    for mb in plan:
        assert len(mb) == 1 or len(mb) * max(lengths[i] for i in mb) <= 18


@pytest.mark.parametrize("policy_loss,params", [
    ("clip_cov", {"cov_fraction": 0.3, "cov_low": -100.0, "cov_high": 100.0}),
    ("kl_cov", {"cov_fraction": 0.3, "kl_cov_coef": 1.0}),
])
def test_covariance_losses_select_over_the_whole_mini_batch(policy_loss, params):
    """Selection over the mini-batch, not per micro-batch: the same gradient with micro-batches
    of 1 row as with one micro-batch, and the selected fraction is the mini-batch's."""
    batch = _batch(rows=8, seed=5)
    register_schema()
    algorithm = algorithm_config(policy_loss=policy_loss, **params)

    def learner(micro):
        return Learner(_model(), LearnerConfig(lr=1e-2, grad_clip=1e9, micro_batch_size=micro),
                       algorithm, vocab_size=V, pad_id=0, temperature=0.7, max_new_tokens=8,
                       total_steps=10, tis_cap=None, seed=0)

    whole, split = learner(64), learner(1)
    grads = [_accumulated_grads(x, batch) for x in (whole, split)]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=1e-5)
    tokens = float(batch.response_mask.sum())
    result = _learner(_model()).update  # a plain update logs no selection
    assert "loss/cov_selected_frac" not in result(batch, {}).metrics
    metrics = learner(1).update(batch, params).metrics
    assert metrics["loss/cov_selected_frac"] == pytest.approx(int(0.3 * tokens) / tokens)


@pytest.mark.parametrize("token_weights", [[], ["sa_ah", "pos_reweight"]])
def test_token_level_advantages_equal_to_the_rollouts_give_the_same_update(token_weights):
    """Advantages [B, T] that repeat each rollout's advantage over its tokens are the
    per-rollout case written per token: the same gradient, bit for bit, through the token
    weights and the loss."""
    register_schema()
    algorithm = algorithm_config(token_weights=token_weights, lambda_value=0.5)
    per_rollout = _batch(rows=6, seed=3)
    per_token = _batch(rows=6, seed=3)
    per_token.advantages = per_rollout.advantages[:, None].expand_as(per_token.response_mask)

    def grads(batch):
        learner = Learner(_model(), LearnerConfig(lr=1e-2, grad_clip=1e9, micro_batch_size=4),
                          algorithm, vocab_size=V, pad_id=0, temperature=0.7, max_new_tokens=8,
                          total_steps=10, tis_cap=None, seed=0)
        return _accumulated_grads(learner, batch)

    for a, b in zip(grads(per_rollout), grads(per_token), strict=True):
        assert torch.equal(a, b)
    torch.testing.assert_close(per_token.rollout_advantages(), per_rollout.advantages)
