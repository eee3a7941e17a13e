"""Where the seed noise of the tiny profile's numbers comes from: training or evaluation.

    python scripts/reproduce.py table2 --profile tiny --rows grpo --seeds 0 1 ... 9 \
        --runs /tmp/noise --out /tmp/noise/table checkpoint_every=5 keep_checkpoints=3
    python scripts/noise_study.py --runs /tmp/noise --seeds 0 1 ... 9 --eval-seeds 10

The first command trains the GRPO row of the tiny Table 2 for each training seed, keeping the
checkpoints of steps 40, 45 and 50 (``checkpoint_every`` does not change the run). This script
loads each of them into one vLLM engine and evaluates it under ``--eval-seeds`` evaluation
seeds (replicate r samples with ``eval_seed(seed, step) + 10007 r``; r = 0 is the evaluation
the run made itself, and the script checks that it reproduces the run's own step-50 number),
drawing 4 samples at temperature 1 for every problem of the held-out sets (200 per level) and
one greedy completion. From those samples it reads two protocols:

- ``today``: the tiny profile's reported number, avg@4 on the first 100 problems of each level
  at the final checkpoint (the same samples: prompt i of a level samples with seed + i whatever
  the problem limit);
- ``new``: avg@4 on all 200 problems of each level, averaged over the checkpoints of
  ``--window`` (default steps 40, 45 and 50); and greedy pass@1 on the same window (no
  evaluation noise at all).

Entropy: the token-mean entropy of the policy on the held-out prompts, estimated by the mean
negative log-probability of the sampled tokens at temperature 1 (E[-log p(x)] under p is the
entropy), on the same two protocols; and the run's own final training entropy
(``train/entropy`` at step 50), which has one value per training seed.

For each quantity, the one-way random-effects split (``stats.variance_components``) into the
training seeds' and the evaluation seeds' variance, and the seed std of one run's number. The
evaluations are cached per checkpoint under ``<runs>/noise_evals/`` so an interrupted study
continues. Writes ``results/noise_tiny.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlvr import console
from rlvr.checks import register_schema, validate
from rlvr.evaluation.runner import EvalBenchmark
from rlvr.evaluation.suite import load_eval_benchmarks
from rlvr.models import resolve_model_path
from rlvr.reporting.collect import RunRecords
from rlvr.reporting.provenance import footer
from rlvr.reporting.stats import VarianceComponents, variance_components
from rlvr.reporting.tables import TABLES
from rlvr.rewards import score_batch
from rlvr.rollout.base import RolloutEngine, SamplingSpec
from rlvr.rollout.factory import build_engine, resolve_device
from rlvr.seeding import eval_seed

REPO = Path(__file__).resolve().parents[1]
FINAL = 50  # the tiny profile's last step
TODAY_LIMIT = 100  # the tiny profile's problems per level
K = 4  # samples per problem at temperature 1 (the tiny profile's avg@4)
REPLICATE_STRIDE = 10_007  # > problems per level: replicates never share a prompt's seed


def replicate_seed(seed: int, step: int, replicate: int) -> int:
    """The sampling seed of evaluation replicate ``replicate`` of (seed, step)."""
    return eval_seed(seed, step) + REPLICATE_STRIDE * replicate


def level_summary(correct: list[list[bool]], logprobs: list[list[list[float]]],
                  limit: int | None) -> dict[str, float]:
    """avg@k over the first ``limit`` problems, and the sum and count of the sampled tokens'
    negative log-probs (for the entropy estimate)."""
    rows = slice(0, limit)
    flat = [c for problem in correct[rows] for c in problem]
    tokens = [-lp for problem in logprobs[rows] for sample in problem for lp in sample]
    return {"avg": sum(flat) / len(flat), "nll_sum": sum(tokens), "tokens": len(tokens)}


def evaluate_checkpoint(engine: RolloutEngine, benchmarks: list[EvalBenchmark], seed: int,
                        step: int, replicates: int, max_new_tokens: int) -> dict:
    """Per replicate and level: the today/new summaries; per level the greedy accuracy."""
    out: dict = {"replicates": [], "greedy": {}}
    for r in range(replicates):
        levels = {}
        for bench in benchmarks:
            rollouts = engine.generate(bench.prompt_ids, SamplingSpec(
                n=K, temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens,
                seed=replicate_seed(seed, step, r)))
            scores = score_batch(rollouts.texts, [p.answer for p in bench.problems
                                                  for _ in range(K)])
            n = len(bench.problems)
            correct = [[s == 1.0 for s in scores[i * K:(i + 1) * K]] for i in range(n)]
            logprobs = [rollouts.logprobs[i * K:(i + 1) * K] for i in range(n)]
            levels[bench.name] = {"today": level_summary(correct, logprobs, TODAY_LIMIT),
                                  "new": level_summary(correct, logprobs, None)}
        out["replicates"].append(levels)
    for bench in benchmarks:
        rollouts = engine.generate(bench.prompt_ids, SamplingSpec(
            n=1, temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=0))
        scores = score_batch(rollouts.texts, [p.answer for p in bench.problems])
        out["greedy"][bench.name] = {"today": sum(scores[:TODAY_LIMIT]) / TODAY_LIMIT,
                                     "new": sum(scores) / len(scores)}
    return out


def accuracy(levels: dict, protocol: str) -> float:
    """The mean over levels of avg@4 (the table's eval/average)."""
    return statistics.fmean(level[protocol]["avg"] for level in levels.values())


def entropy(levels: dict, protocol: str) -> float:
    """Token-mean negative log-prob of the sampled tokens over all levels."""
    return (sum(level[protocol]["nll_sum"] for level in levels.values())
            / sum(level[protocol]["tokens"] for level in levels.values()))


def run_config(runs: Path, seed: int):
    """The validated config of the GRPO row's run, with every held-out problem evaluated."""
    table = TABLES["table2"]
    profile = table.profile("tiny")
    row = next(r for r in table.rows if r.id == "grpo")
    overrides = [*profile.overrides, "algorithm=grpo", f"seed={seed}",
                 f"output_dir={table.run_dir(runs, 'tiny', row, seed)}",
                 *[f"eval.benchmarks.{i}.limit=null" for i in range(3)]]
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return validate(compose("config", overrides=overrides))


def measure(runs: Path, seeds: list[int], window: list[int], replicates: int
            ) -> tuple[dict, list[float]]:
    """Evaluate (or read from the cache) every checkpoint of the window; returns
    {(seed, step): result} and the seconds each checkpoint evaluated in this call took."""
    cache = runs / "noise_evals"
    cache.mkdir(parents=True, exist_ok=True)
    results, engine, spent = {}, None, []
    for seed in seeds:
        run = run_config(runs, seed)
        for step in window:
            path = cache / f"seed{seed}_step{step}_r{replicates}.json"
            if path.exists():
                results[seed, step] = json.loads(path.read_text())
                continue
            started = time.perf_counter()
            policy_dir = Path(run.output_dir) / "checkpoints" / f"step_{step:06d}" / "policy"
            policy = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32)
            if engine is None:
                model_path = resolve_model_path(run.model, run.data.arith)
                tokenizer = AutoTokenizer.from_pretrained(model_path)
                benchmarks = load_eval_benchmarks(run, tokenizer)
                with console.native_output_to_run_log():
                    engine = build_engine(run, model_path, None, tokenizer,
                                          [len(p) for b in benchmarks for p in b.prompt_ids],
                                          resolve_device("cpu"))
            engine.sync_weights(policy)
            with torch.no_grad():
                results[seed, step] = evaluate_checkpoint(engine, benchmarks, seed, step,
                                                          replicates, run.rollout.max_new_tokens)
            path.write_text(json.dumps(results[seed, step]))
            spent.append(time.perf_counter() - started)
            print(f"seed {seed} step {step}: {spent[-1]:.0f} s", flush=True)
    return results, spent


def _row(name: str, parts: VarianceComponents, scale: float, digits: int, unit: str) -> str:
    return (f"| {name} | {parts.training_seeds} x {parts.evaluation_seeds} | "
            f"{scale * math.sqrt(parts.total):.{digits}f} {unit} | "
            f"{scale * math.sqrt(parts.training):.{digits}f} | "
            f"{scale * math.sqrt(parts.evaluation):.{digits}f} | "
            f"{100 * parts.share('training'):.0f} % | {100 * parts.share('evaluation'):.0f} % |")


def report(runs: Path, seeds: list[int], window: list[int], results: dict, replicates: int,
           spent: list[float], command: str) -> str:
    """The markdown of results/noise_tiny.md."""
    def groups(value) -> list[list[float]]:
        return [[value(seed, r) for r in range(replicates)] for seed in seeds]

    def rep(seed: int, step: int, r: int) -> dict:
        return results[seed, step]["replicates"][r]

    today_acc = groups(lambda s, r: accuracy(rep(s, FINAL, r), "today"))
    new_acc = groups(lambda s, r: statistics.fmean(accuracy(rep(s, c, r), "new")
                                                   for c in window))
    final_new_acc = groups(lambda s, r: accuracy(rep(s, FINAL, r), "new"))
    today_ent = groups(lambda s, r: entropy(rep(s, FINAL, r), "today"))
    new_ent = groups(lambda s, r: statistics.fmean(entropy(rep(s, c, r), "new")
                                                   for c in window))
    greedy_today = [statistics.fmean(results[s, FINAL]["greedy"][b]["today"]
                                     for b in results[s, FINAL]["greedy"]) for s in seeds]
    greedy_new = [statistics.fmean(statistics.fmean(results[s, c]["greedy"][b]["new"]
                                                    for b in results[s, c]["greedy"])
                                   for c in window) for s in seeds]
    table = TABLES["table2"]
    row = next(r for r in table.rows if r.id == "grpo")
    records = {s: RunRecords.load(table.run_dir(runs, "tiny", row, s)) for s in seeds}
    train_entropy = [records[s].curve("train/entropy")[1][-1] for s in seeds]
    logged = {s: records[s].curve("eval/average") for s in seeds}
    logged_window = [statistics.fmean(logged[s][1][-3:]) for s in seeds]
    logged_steps = ", ".join(map(str, logged[seeds[0]][0][-3:]))
    own = [records[s].selected_eval("final")["eval/average"] for s in seeds]
    replayed = [today_acc[i][0] for i in range(len(seeds))]
    # the mean over levels is summed in another order than the run's: equal to rounding
    agree = sum(math.isclose(a, b, rel_tol=0, abs_tol=1e-12)
                for a, b in zip(own, replayed, strict=True))

    lines = ["# Where the seed noise of the tiny profile comes from", "",
             f"GRPO row of the tiny Table 2 (50 steps), training seeds {seeds[0]}-{seeds[-1]} "
             f"({len(seeds)}), each checkpoint re-evaluated under {replicates} evaluation "
             "seeds. `today`: avg@4 at temperature 1 on the first 100 problems of each level "
             "at the final checkpoint (the tiny profile's reported number). `new`: avg@4 on "
             "all 200 problems of each level, averaged over the checkpoints of steps "
             f"{', '.join(map(str, window))}. Entropy: the policy's token-mean entropy on the "
             "held-out prompts, estimated as the mean negative log-prob of the sampled tokens "
             "at temperature 1. Split: one-way random effects (ANOVA estimates, "
             "`rlvr/reporting/stats.py` `variance_components`); `seed std` is the std of one "
             "run's number evaluated once, sqrt(training + evaluation variance).", "",
             f"Replicate 0 is the evaluation each run made itself: it reproduces the run's "
             f"logged step-{FINAL} `eval/average` to 1e-12 for {agree} of {len(seeds)} seeds.",
             "", "| quantity | seeds (training x evaluation) | seed std | training std | "
             "evaluation std | training share | evaluation share |",
             "|---|---|---|---|---|---|---|",
             _row("accuracy, today", variance_components(today_acc), 100, 2, "points"),
             _row("accuracy, 200 problems per level, final checkpoint",
                  variance_components(final_new_acc), 100, 2, "points"),
             _row(f"accuracy, new (200 per level, window of {len(window)} checkpoints)",
                  variance_components(new_acc), 100, 2, "points"),
             _row("held-out entropy, today", variance_components(today_ent), 1, 4, "nats"),
             _row("held-out entropy, new", variance_components(new_ent), 1, 4, "nats"),
             "", "One value per training seed (greedy: no evaluation noise; logged: the runs' "
             "own evaluations, training and evaluation noise together):", "",
             "| quantity | training seeds | mean | seed std |", "|---|---|---|---|"]
    for name, values, scale, digits in (
            ("greedy pass@1, first 100 per level, final checkpoint", greedy_today, 100, 2),
            (f"greedy pass@1, 200 per level, window of {len(window)} checkpoints", greedy_new,
             100, 2),
            ("reported accuracy as logged by the runs (today, one evaluation each)", own, 100, 2),
            (f"mean of the runs' logged evaluations at steps {logged_steps} (today's sets)",
             logged_window, 100, 2),
            ("final training entropy (`train/entropy`, step 50), nats", train_entropy, 1, 4)):
        lines.append(f"| {name} | {len(values)} | {scale * statistics.fmean(values):.{digits}f}"
                     f" | {scale * statistics.stdev(values):.{digits}f} |")
    cost = (f"{statistics.fmean(spent):.0f} s per checkpoint (mean of {len(spent)})"
            if spent else "not measured in this call (all checkpoints cached)")
    lines += ["", f"Evaluation cost on this machine (2 cores shared with other jobs): {cost} "
              f"for {replicates} replicates of 600 problems x {K} samples plus greedy.",
              "", footer(command)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="the --runs of the training command")
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--eval-seeds", type=int, default=10)
    parser.add_argument("--window", type=int, nargs="+", default=[40, 45, 50],
                        help="the checkpoints the new protocol averages (the last is the final)")
    parser.add_argument("--out", default=str(REPO / "results" / "noise_tiny.md"))
    args = parser.parse_args()
    console.setup()
    register_schema()
    runs = Path(args.runs)
    if args.window[-1] != FINAL:
        parser.error(f"--window must end at the final step {FINAL}")
    results, spent = measure(runs, args.seeds, args.window, args.eval_seeds)
    text = report(runs, args.seeds, args.window, results, args.eval_seeds, spent,
                  shlex.join(["python", "scripts/noise_study.py", *sys.argv[1:]]))
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
