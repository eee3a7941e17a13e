"""The rank-aware reductions on 2 gloo processes (run by ``torchrun``): rank r holds r + 1 rows
of width r + 2 filled with r + 1; rank 0 writes what each helper returned to argv[1]."""

import sys

import torch

from rlvr.learner import distributed


def main(out: str) -> None:
    distributed.init_from_env(torch.device("cpu"))
    r = distributed.rank()
    rows = torch.full((r + 1, r + 2), float(r + 1))
    mask = torch.ones_like(rows)
    result = {
        "gathered": distributed.gather_rows(rows),
        "gathered_bool": distributed.gather_rows(torch.tensor([r == 0] * (r + 1))),
        "token_mean": distributed.token_mean(rows, mask),
        "sum": distributed.all_reduce(float(r + 1)),
        "max": distributed.all_reduce(float(r + 1), op="max"),
        "from_rank0": distributed.from_rank0({"rank": r, "history": [(0, 0.5)]}),
    }
    if r == 0:
        torch.save(result, out)
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
