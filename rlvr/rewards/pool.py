"""Symbolic checks in persistent worker processes, with a hard time bound per check.

math-verify's own timeouts use ``signal.alarm``: they fail outside a main thread and cost
~15 ms per check. Each check instead runs in a disposable worker process (``python -m
rlvr.rewards.worker``, a plain subprocess, so nothing of the caller's ``__main__`` is re-run) and
the parent enforces the bound: a worker that overruns it is killed, the check scores 0, and a
fresh worker starts in the background (its start-up is never charged to a check). This works
whether the caller is a main thread, another thread or a worker process.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import time
from collections import deque

STARTUP_TIMEOUT_S = 120.0
MAX_FAILED_STARTS = 3
_WARM_UP = None  # the job of a worker answering its start-up ping, not a caller's pair


class _Worker:
    """One worker process. It is sent a start-up ping at once and is warm once it answered."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rlvr.rewards.worker", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"}, start_new_session=True)
        self.warm = False
        self.send(("1", "1"))
        self.startup_due = time.monotonic() + STARTUP_TIMEOUT_S

    def send(self, pair: tuple[str, str]) -> None:
        self.process.stdin.write(json.dumps(pair) + "\n")
        self.process.stdin.flush()

    def receive(self) -> bool:
        line = self.process.stdout.readline()
        if not line:
            raise EOFError("symbolic worker exited")
        return line.strip() == "1"

    def fileno(self) -> int:
        return self.process.stdout.fileno()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


class SymbolicPool:
    """``workers`` processes that decide (reference, predicted) pairs symbolically; a pair not
    decided within ``timeout_s`` of being handed to a worker counts as not equivalent."""

    def __init__(self, workers: int = 2, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self._failed_starts = 0
        self._workers = [_Worker() for _ in range(workers)]

    def _replace(self, worker: _Worker) -> _Worker:
        """Kill ``worker`` and put a fresh one, warming up, in its place."""
        worker.kill()
        fresh = _Worker()
        self._workers[self._workers.index(worker)] = fresh
        return fresh

    def check(self, pairs: list[tuple[str, str]]) -> list[bool]:
        """Equivalence of each (reference, predicted) pair, in order."""
        results = [False] * len(pairs)
        queue = deque(enumerate(pairs))
        jobs: dict[_Worker, tuple[int | None, float]] = {
            w: (_WARM_UP, w.startup_due) for w in self._workers if not w.warm}

        def pending() -> bool:
            return bool(queue) or any(job is not _WARM_UP for job, _ in jobs.values())

        def restart(worker: _Worker, job: int | None, why: str) -> None:
            self._failed_starts = self._failed_starts + 1 if job is _WARM_UP else 0
            if self._failed_starts >= MAX_FAILED_STARTS:  # an installation problem: do not loop
                worker.kill()
                raise RuntimeError(
                    f"symbolic-check workers {why} {MAX_FAILED_STARTS} times while starting; "
                    f"run `{sys.executable} -m rlvr.rewards.worker {os.getpid()}` to see why")
            fresh = self._replace(worker)
            jobs[fresh] = (_WARM_UP, fresh.startup_due)

        while pending():
            for worker in list(self._workers):
                if worker not in jobs and queue:
                    index, pair = queue.popleft()
                    try:
                        worker.send(pair)
                    except OSError:  # it died while idle: retry the pair on a fresh worker
                        queue.appendleft((index, pair))
                        restart(worker, None, "exited")
                        continue
                    jobs[worker] = (index, time.monotonic() + self.timeout_s)
            deadline = min(due for _, due in jobs.values())
            ready, _, _ = select.select(list(jobs), [], [],
                                        max(0.0, deadline - time.monotonic()))
            for worker in list(jobs):
                job, due = jobs[worker]
                if worker in ready:
                    del jobs[worker]
                    try:
                        verdict = worker.receive()
                    except EOFError:  # it crashed on this pair: the pair scores 0
                        restart(worker, job, "exited")
                        continue
                    if job is _WARM_UP:
                        worker.warm = True
                        self._failed_starts = 0
                    else:
                        results[job] = verdict
                elif time.monotonic() >= due:
                    del jobs[worker]
                    restart(worker, job, "timed out")
        return results

    def close(self) -> None:
        for worker in self._workers:
            worker.kill()
        self._workers = []


_DEFAULT: SymbolicPool | None = None


def default_pool(workers: int | None = None, timeout_s: float = 2.0) -> SymbolicPool:
    """The process-wide pool, started on first use and closed at exit."""
    global _DEFAULT
    if _DEFAULT is None or _DEFAULT.timeout_s != timeout_s:
        if _DEFAULT is not None:
            _DEFAULT.close()
        _DEFAULT = SymbolicPool(workers or min(2, os.cpu_count() or 1), timeout_s)
        atexit.register(_DEFAULT.close)
    return _DEFAULT
