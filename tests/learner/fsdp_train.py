"""A short training run of the tiny model with scripted rollouts, by ``torchrun`` (learner
sharded with FSDP over gloo) or plainly (one process).

    python fsdp_train.py OUT_DIR MODEL_DIR [override ...]

``ScriptedEngine`` draws each prompt's completions from the prompt and its sampling seed alone
(some box the right answer, some a wrong one, after a few random words), so a rank draws exactly
the rollouts a single process draws for the same prompt, and the runs can be compared metric by
metric. With ``RLVR_ODD_SEEDS_SOLVED=1`` every rollout of a prompt with an odd seed is right
(the odd positions of each draw: on 2 ranks, all of rank 1's prompts). Rank 0's sink writes
``OUT_DIR/metrics.jsonl``; rank 0 writes the final whole weights to
``OUT_DIR/weights.pt``; every rank writes the run state it holds (lambda schedule, eval history)
to ``OUT_DIR/state-rank<r>.json``. With ``RLVR_KILL_AFTER=k`` every rank exits with status 3 right
after the checkpoint of step k is written (a killed run, to be resumed).
"""

import json
import os
import random
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from rlvr.checks import register_schema, validate
from rlvr.learner import distributed
from rlvr.rollout.base import Rollouts, SamplingSpec
from rlvr.train import Trainer

REPO = Path(__file__).resolve().parents[2]
WORDS = ["so", "we", "add", "then", "the", "sum", "is", "carry", "one"]
KILLED = 3


class ScriptedEngine:
    """Rollouts that depend only on (prompt, seed): the right or a wrong boxed answer after
    0-5 random words, with made-up sampler log-probs."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.answers: dict[tuple[int, ...], str] = {}

    def generate(self, prompts: list[list[int]], sampling: SamplingSpec) -> Rollouts:
        out = Rollouts([], [], [], [])
        solve_odd = os.environ.get("RLVR_ODD_SEEDS_SOLVED") == "1"
        for i, prompt in enumerate(prompts):
            seed = sampling.seed + i * sampling.seed_stride
            rng = random.Random(f"{seed}:{prompt}")
            answer = self.answers[tuple(prompt)]
            for _ in range(sampling.n):
                solved = solve_odd and seed % 2 == 1
                boxed = answer if solved or rng.random() < 0.5 else f"{answer}7"
                words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(6)))
                text = f"{words} \\boxed{{{boxed}}}"
                ids = self.tokenizer.encode(text, add_special_tokens=False)
                ids = [*ids, self.tokenizer.eos_token_id][: sampling.max_new_tokens]
                out.response_ids.append(ids)
                out.logprobs.append([-2.0 * rng.random() for _ in ids])
                out.texts.append(text)
                out.truncated.append(ids[-1] != self.tokenizer.eos_token_id)
        return out

    def score(self, sequences, prompt_lengths):
        raise NotImplementedError

    def sync_weights(self, policy) -> None:
        """The scripted rollouts do not depend on the weights."""

    def sleep(self) -> None:
        """Nothing to release."""

    def wake_up(self) -> None:
        """Nothing to re-acquire."""


def main(out_dir: Path, model_dir: str, overrides: list[str]) -> None:
    distributed.init_from_env(torch.device("cpu"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    register_schema()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[
            f"model.path={model_dir}", "rollout=vllm", "rollout.n=4", "logger=disabled",
            f"output_dir={out_dir}", "eval.benchmarks=[]", "checkpoint_every=0",
            "prompts_per_step=4", "learner.micro_batch_size=3",
            f"learner.strategy={'fsdp' if world > 1 else 'single'}", *overrides])
    run = validate(cfg)
    from transformers import AutoTokenizer

    engine = ScriptedEngine(AutoTokenizer.from_pretrained(model_dir))
    trainer = Trainer(run, {}, engine=engine)
    engine.answers = {tuple(p): problem.answer
                      for p, problem in zip(trainer.prompts, trainer.problems, strict=True)}
    for bench in trainer.eval_benchmarks:
        engine.answers.update({tuple(p): problem.answer for p, problem
                               in zip(bench.prompt_ids, bench.problems, strict=True)})
    kill_after = int(os.environ.get("RLVR_KILL_AFTER", "0"))
    save = trainer.save

    def save_then_maybe_die(done: int) -> None:
        save(done)
        if done == kill_after:
            os._exit(KILLED)

    trainer.save = save_then_maybe_die
    try:
        trainer.fit()
    finally:
        trainer.close()
    weights = dict(distributed.full_state_items(trainer.policy))
    rank = distributed.rank()
    if rank == 0:
        torch.save(weights, out_dir / "weights.pt")
    state = {"schedules": trainer.schedules.state_dict(), "eval_history": trainer.eval_history,
             "last_eval": trainer.last_eval}
    (out_dir / f"state-rank{rank}.json").write_text(json.dumps(state, sort_keys=True))
    distributed.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
