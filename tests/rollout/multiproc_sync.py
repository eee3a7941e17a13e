"""Weight sync into vLLM behind its multiprocess executor, as a script: vLLM's worker processes
need the ``if __name__ == "__main__"`` guard, which a pytest process does not have.

    python tests/rollout/multiproc_sync.py MODEL_DIR [TENSOR_PARALLEL_SIZE]

Scores fixed sequences, takes one optimiser step, syncs, and checks that the engine's log-probs
match the learner's before and after the sync (``test_weight_sync._check_sync``); exits non-zero
on a mismatch.
"""

import os
import sys

import torch

from rlvr.config import LoraConfig, RolloutConfig
from rlvr.learner.policy import load_policy
from tests.rollout.test_weight_sync import _check_sync


def main(model_dir: str, tensor_parallel_size: int) -> None:
    from transformers import AutoTokenizer

    from rlvr.rollout.vllm_engine import VLLMEngine

    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "1"
    policy = load_policy(model_dir, "float32", LoraConfig(), torch.device("cpu"))
    engine = VLLMEngine(model_dir, RolloutConfig(tensor_parallel_size=tensor_parallel_size),
                        dtype="float32", max_model_len=160, seed=0)
    _check_sync(engine, policy, AutoTokenizer.from_pretrained(model_dir))
    engine.close()
    print(f"weight sync through the multiprocess executor (tp={tensor_parallel_size}) matches")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
