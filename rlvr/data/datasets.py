"""One entry point for problems: the synthetic arithmetic task or a registered benchmark."""

from __future__ import annotations

from rlvr.config import ArithConfig
from rlvr.data import arith
from rlvr.data.benchmarks import load_benchmark
from rlvr.data.problem import Problem

ARITH_TRAIN = "arith"
ARITH_EVAL = {f"arith_l{level}": level for level in arith.LEVELS}


def reads_data_dir(name: str) -> bool:
    """Whether ``load_problems(name, ...)`` reads ``data_dir`` (the arithmetic sets are
    generated, benchmarks are read from files)."""
    return name != ARITH_TRAIN and name not in ARITH_EVAL


def load_problems(name: str, split: str, data_dir: str | None, limit: int | None,
                  task: ArithConfig) -> list[Problem]:
    """Problems of ``name``: ``arith`` (training problems), ``arith_l1..3`` (held-out levels),
    or any benchmark of rlvr/data/benchmarks.py (hub or ``data_dir``)."""
    if name == ARITH_TRAIN:
        problems = [p for p, _ in arith.train_set(task.levels, task.num_train, task.seed,
                                                  task.num_eval)]
    elif name in ARITH_EVAL:
        problems = arith.eval_set(ARITH_EVAL[name], task.num_eval, task.seed)
    else:
        return load_benchmark(name, split, data_dir=data_dir, limit=limit)
    return problems[:limit] if limit else problems
