"""Run by ``torchrun`` with 2 processes: rank 1 arrives at an all-reduce late, past the group's
``timeout_s`` (argv[1] seconds); rank 0 writes the error it gets to argv[2]."""

import sys
import time

import torch

from rlvr.learner import distributed


def main(timeout_s: str, out: str) -> None:
    distributed.init_from_env(torch.device("cpu"), timeout_s=float(timeout_s))
    if distributed.rank() == 1:
        time.sleep(3 * float(timeout_s))
    try:
        distributed.all_reduce(1.0)
    except distributed.CollectiveTimeout as err:
        if distributed.rank() == 0:
            with open(out, "w") as f:
                f.write(str(err))


if __name__ == "__main__":
    main(*sys.argv[1:])
