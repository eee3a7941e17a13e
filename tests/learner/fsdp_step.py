"""One learner update, run by ``torchrun`` (strategy fsdp) or plainly (strategy single).

Every process builds the same model and the same 8 rollouts; under torchrun rank r updates on
rows r, r + W, ... Rank 0 writes the loss and the updated full weights to argv[1]; argv[2], if
given, is the compute dtype (``model.dtype``); argv[3], if given, a policy loss that selects
tokens (``clip_cov``, ``kl_cov``), updated off-policy over 2 epochs of 2 mini-batches.
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


def main(out: str, dtype: str = "float32", policy_loss: str = "ppo_clip") -> None:
    distributed.init_from_env(torch.device("cpu"))
    world, rank = distributed.world_size(), distributed.rank()
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=V, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, intermediate_size=32, tie_word_embeddings=False,
        max_position_embeddings=64)).float()
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
    epochs = 2 if params else 1
    cfg = LearnerConfig(lr=1e-3, micro_batch_size=3, ppo_epochs=epochs, mini_batches=epochs,
                        strategy="fsdp" if world > 1 else "single")
    learner = Learner(model, cfg, algorithm_config(policy_loss=policy_loss, **params),
                      vocab_size=V, pad_id=0, temperature=1.0, max_new_tokens=8, total_steps=1,
                      tis_cap=None, seed=0, dtype=dtype)
    metrics = learner.update(batch, params).metrics
    weights = dict(distributed.full_state_items(model))
    if rank == 0:
        torch.save({"pg_loss": metrics["loss/pg_loss"], "grad_norm": metrics["optim/grad_norm"],
                    "selected": metrics.get("loss/cov_selected_frac"), "weights": weights}, out)
    distributed.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
