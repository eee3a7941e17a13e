"""Symbolic checks in persistent worker processes, with a hard time bound per check.

math-verify's own timeouts use ``signal.alarm``: they fail outside a main thread and cost
~15 ms per check. Each check instead runs in a disposable worker process (``python -m
rlvr.rewards.worker``, a plain subprocess, so nothing of the caller's ``__main__`` is re-run) and
the parent enforces the bound: a worker that overruns it is killed, the check scores 0, and a
fresh worker starts in the background (its start-up is never charged to a check). Calls are
serialised by a lock, so the pool can be shared by threads.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import subprocess
import sys
import threading
import time
from collections import deque

STARTUP_TIMEOUT_S = 120.0
MAX_FAILED_STARTS = 3
WARM_UP = -1  # the job of a worker answering its start-up ping, not an index of a caller's pair


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

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


class SymbolicPool:
    """``workers`` processes that decide (reference, predicted) pairs symbolically; a pair not
    decided within ``timeout_s`` of being handed to a worker counts as not equivalent."""

    def __init__(self, workers: int = 2, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self.owner_pid = os.getpid()
        self._lock = threading.Lock()
        self._failed_starts = 0
        self._workers = [_Worker() for _ in range(workers)]

    @property
    def closed(self) -> bool:
        return not self._workers

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (for measuring their CPU time)."""
        return [worker.process.pid for worker in self._workers]

    def _replace(self, worker: _Worker) -> _Worker:
        """Kill ``worker`` and put a fresh one, warming up, in its place."""
        worker.kill()
        fresh = _Worker()
        self._workers[self._workers.index(worker)] = fresh
        return fresh

    def check(self, pairs: list[tuple[str, str]]) -> list[bool]:
        """Equivalence of each (reference, predicted) pair, in order."""
        if self.closed:
            raise RuntimeError("the symbolic-check pool is closed")
        with self._lock:
            jobs: dict[_Worker, tuple[int, float]] = {
                w: (WARM_UP, w.startup_due) for w in self._workers if not w.warm}
            try:
                return self._run(pairs, jobs)
            except BaseException:
                # a worker still busy with a pair would answer the next caller's pair with
                # this one's verdict: replace it
                for worker, (job, _) in jobs.items():
                    if job != WARM_UP and worker in self._workers:
                        self._replace(worker)
                raise

    def _run(self, pairs: list[tuple[str, str]], jobs: dict[_Worker, tuple[int, float]]
             ) -> list[bool]:
        results = [False] * len(pairs)
        queue = deque(enumerate(pairs))

        def restart(worker: _Worker, starting: bool, why: str) -> None:
            self._failed_starts = self._failed_starts + 1 if starting else 0
            fresh = self._replace(worker)
            if self._failed_starts >= MAX_FAILED_STARTS:  # an installation problem: do not loop
                self._failed_starts = 0
                raise RuntimeError(
                    f"symbolic-check workers {why} {MAX_FAILED_STARTS} times while starting; "
                    f"run `{sys.executable} -m rlvr.rewards.worker {os.getpid()}` to see why")
            jobs[fresh] = (WARM_UP, fresh.startup_due)

        while queue or any(job != WARM_UP for job, _ in jobs.values()):
            for worker in list(self._workers):
                if worker not in jobs and queue:
                    index, pair = queue.popleft()
                    try:
                        worker.send(pair)
                    except OSError:  # it died while idle: retry the pair on a fresh worker
                        queue.appendleft((index, pair))
                        restart(worker, False, "exited")
                        continue
                    jobs[worker] = (index, time.monotonic() + self.timeout_s)
            deadline = min(due for _, due in jobs.values())
            with selectors.DefaultSelector() as selector:  # not select(): fds may be >= 1024
                for worker in jobs:
                    selector.register(worker.process.stdout, selectors.EVENT_READ, worker)
                ready = {key.data for key, _ in
                         selector.select(max(0.0, deadline - time.monotonic()))}
            for worker in list(jobs):
                job, due = jobs[worker]
                if worker in ready:
                    del jobs[worker]
                    try:
                        verdict = worker.receive()
                    except EOFError:  # it crashed on this pair (which scores 0)
                        restart(worker, job == WARM_UP, "exited")
                        continue
                    if job == WARM_UP:
                        worker.warm = True
                        self._failed_starts = 0
                    else:
                        results[job] = verdict
                elif time.monotonic() >= due:
                    del jobs[worker]
                    restart(worker, job == WARM_UP, "timed out")
        return results

    def close(self) -> None:
        """Kill the workers (only in the process that started them, not in a forked child)."""
        if os.getpid() == self.owner_pid:
            for worker in self._workers:
                worker.kill()
        self._workers = []


_DEFAULT: SymbolicPool | None = None
_DEFAULT_LOCK = threading.Lock()


def default_pool(workers: int | None = None, timeout_s: float = 2.0) -> SymbolicPool:
    """The process-wide pool, started on first use (again in a forked child, or after it was
    closed, or for another ``timeout_s``) and closed at exit."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        current = _DEFAULT
        if (current is None or current.closed or current.owner_pid != os.getpid()
                or current.timeout_s != timeout_s):
            if current is not None:
                current.close()
            _DEFAULT = SymbolicPool(workers or min(2, os.cpu_count() or 1), timeout_s)
            atexit.register(_DEFAULT.close)
        return _DEFAULT
