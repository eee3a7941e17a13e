"""A symbolic-check worker: ``python -m rlvr.rewards.worker <parent pid>``.

Reads JSON lines ``[reference, predicted]`` on stdin, answers ``1`` or ``0`` per line on its
original stdout; anything a library prints goes to stderr, so it cannot shift the answers. It
does not bound its own time: the pool that started it kills it when a check overruns. On Linux it
also dies with its parent, so a parent killed mid-check leaves no busy orphan behind (strictly,
with the parent's thread that started it: the pool replaces a worker found dead).
"""

from __future__ import annotations

import json
import os
import signal
import sys

from rlvr.rewards.equivalence import symbolic_equivalent

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when its parent exits (a killed parent runs no clean-up)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        sys.exit(0)


def main() -> None:
    _die_with_parent(int(sys.argv[1]))
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    for line in sys.stdin:
        reference, predicted = json.loads(line)
        verdict = symbolic_equivalent(reference, predicted)
        answers.write("1\n" if verdict else "0\n")
        answers.flush()


if __name__ == "__main__":
    main()
