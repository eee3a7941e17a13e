"""One learner update, run by ``torchrun`` (strategy fsdp) or plainly (strategy single).

Every process builds the same model and the same 8 rollouts; under torchrun rank r updates on
rows r, r + W, ... Rank 0 writes the loss, the gradient norm and the updated full weights to
argv[1]; argv[2], if given, is the compute dtype (``model.dtype``), or ``float64`` for weights
and compute in float64 but for the fused log-prob op's float32 log-softmax (summation order then
moves results by ~1e-15 relative, so a difference between one process and two ranks that is
not rounding stands out); argv[3], if given, the number of mini-batches (8: one row each, so a
rank holds none of half of them); argv[4], if given, a policy loss that selects tokens
(``clip_cov``, ``kl_cov``), updated off-policy over 2 epochs.
"""

import sys

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from rlvr.batch import StepBatch
from rlvr.checks import register_schema
from rlvr.config import LearnerConfig, algorithm_config
from rlvr.learner import distributed
from rlvr.learner.learner import Learner

V = 40
SELECTING = {"clip_cov": {"cov_fraction": 0.2, "cov_low": -100.0, "cov_high": 100.0},
             "kl_cov": {"cov_fraction": 0.2, "kl_cov_coef": 1.0}}


def main(out: str, dtype: str = "float32", mini_batches: str = "1",
         policy_loss: str = "ppo_clip") -> None:
    distributed.init_from_env(torch.device("cpu"))
    world, rank = distributed.world_size(), distributed.rank()
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=V, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, intermediate_size=32, tie_word_embeddings=False,
        max_position_embeddings=64)).to(torch.float64 if dtype == "float64" else torch.float32)
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(1, V, (3 + i % 3,), generator=g).tolist() for i in range(8)]
    responses = [torch.randint(1, V, (2 + (i * 5) % 6,), generator=g).tolist() for i in range(8)]
    advantages = torch.randn(8, generator=g)
    rows = list(range(rank, 8, world))
    width = max(len(responses[i]) for i in rows)
    mask = torch.zeros(len(rows), width)
    for j, i in enumerate(rows):
        mask[j, : len(responses[i])] = 1
    batch = StepBatch.of_rows([prompts[i] for i in rows], [responses[i] for i in rows],
                              torch.zeros_like(mask), mask, advantages[rows],
                              global_rows=rows if world > 1 else None)
    register_schema()
    params = SELECTING.get(policy_loss, {})
    cfg = LearnerConfig(lr=1e-3, micro_batch_size=3, mini_batches=int(mini_batches),
                        ppo_epochs=2 if params else 1,
                        strategy="fsdp" if world > 1 else "single")
    compute = "float32" if dtype == "float64" else dtype  # float64: no autocast region
    learner = Learner(model, cfg, algorithm_config(policy_loss=policy_loss, **params),
                      vocab_size=V, pad_id=0, temperature=1.0, max_new_tokens=8, total_steps=1,
                      tis_cap=None, seed=0, dtype=compute)
    metrics = learner.update(batch, params).metrics
    weights = dict(distributed.full_state_items(model))
    if rank == 0:
        torch.save({"pg_loss": metrics["loss/pg_loss"], "grad_norm": metrics["optim/grad_norm"],
                    "selected": metrics.get("loss/cov_selected_frac"), "weights": weights}, out)
    distributed.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
