"""The run directory: one run per directory, and the run in it is the run its config says.

``<run_dir>/run.json`` records the run's identity: every resolved setting that changes results
(the whole ``RunConfig`` minus ``RESUMABLE_KEYS``), its fingerprint (a hash of those settings)
and each command that trained into the directory; ``<run_dir>/config.yaml`` is the resolved
config of the latest command. Opening a run directory (``RunDirectory.open``), before any model
loads:

- takes an OS-level lock (``fcntl.flock`` on ``<parent>/.<name>.lock``, released by the kernel
  when the process dies, so no lock is ever stale): a second run into the same directory stops at
  once, naming the holder's PID;
- ``resume=auto`` (or a checkpoint path) on a directory that holds a run with another identity
  stops with one line naming the settings that differ and the ways out;
- ``resume=never`` on a directory that holds a run moves that run aside whole, to the sibling
  ``<name>.<YYYYmmdd-HHMMSS>``: two runs' checkpoints and metrics never mix, nothing is deleted.

``total_steps`` may differ on resume (extending a run) only while nothing in the run depends on
the horizon: a constant learning rate and no scheduled algorithm parameter. Otherwise the
learning-rate schedule or the parameter schedule is a function of step / total_steps, and a
longer run is another run: ``total_steps`` is then part of the identity.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rlvr.config import RESUMABLE_KEYS, ConfigError, RunConfig, is_under
from rlvr.tracking import flatten

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"
HORIZON_KEY = "total_steps"
class RunDirError(ConfigError):
    """The run directory cannot take this run; the message names the directory and the way out."""


def horizon_matters(run: RunConfig) -> bool:
    """Whether the trajectory depends on ``total_steps``: a learning-rate schedule other than
    constant, or an algorithm part whose parameters follow a schedule (rlvr/algorithms/parts.py)."""
    from rlvr.algorithms.parts import ScheduleSet, algorithm_parts

    algo = run.algorithm
    scheduled = ScheduleSet([(registry, name, algo.parameters())
                             for registry, name in algorithm_parts(algo)]).states
    return run.learner.lr_schedule != "constant" or bool(scheduled)


def identity(run: RunConfig) -> dict[str, Any]:
    """The settings that make the run: the flattened config (``{"algorithm.beta_pos": 0.9, ...}``)
    minus ``RESUMABLE_KEYS`` (and ``total_steps`` where ``horizon_matters`` is false)."""
    exempt = RESUMABLE_KEYS + (() if horizon_matters(run) else (HORIZON_KEY,))
    flat = flatten(dataclasses.asdict(run))
    return {key: flat[key] for key in sorted(flat) if not is_under(key, exempt)}


def fingerprint(settings: dict[str, Any]) -> str:
    """A 16-hex-digit SHA-256 of the canonical JSON of ``identity``'s settings."""
    text = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key old -> new`` for every setting that differs (a missing one reads ``<unset>``)."""
    unset = "<unset>"
    return [f"{key} {old.get(key, unset)!r} -> {new.get(key, unset)!r}"
            for key in sorted(set(old) | set(new)) if old.get(key, unset) != new.get(key, unset)]


def check_identity(recorded: dict[str, Any], run: RunConfig, where: str) -> None:
    """Stop when the run recorded at ``where`` is not the configured one.

    Raises:
        RunDirError: naming the settings that differ and the ways out.
    """
    diffs = differences(recorded, identity(run))
    if not diffs:
        return
    horizon = any(d.startswith(f"{HORIZON_KEY} ") for d in diffs)
    raise RunDirError(
        f"{where} holds a run with other settings: {'; '.join(diffs)}. "
        + ("(total_steps is part of the run here: the learning-rate or parameter schedule "
           "depends on it.) " if horizon else "")
        + "Restore those settings to resume it, pass resume=never to move it aside and start "
          "this run, or choose another output_dir")


def _holds_a_run(run_dir: Path) -> bool:
    return run_dir.is_dir() and any(run_dir.iterdir())


class RunLock:
    """An exclusive ``flock`` on ``<parent>/.<name>.lock`` holding the owner's PID."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir.parent / f".{run_dir.name}.lock"
        self.run_dir = run_dir
        self._fd: int | None = None

    def acquire(self) -> None:
        """Raises RunDirError when another process holds the lock, naming its PID."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirError(f"output_dir={self.run_dir} is in use by another run (PID "
                              f"{holder}); wait for it to end, or choose another output_dir"
                              ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _aside_path(run_dir: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = run_dir.with_name(f"{run_dir.name}.{stamp}"), 1
    while candidate.exists():
        candidate, n = run_dir.with_name(f"{run_dir.name}.{stamp}-{n}"), n + 1
    return candidate


def read_run_record(run_dir: Path) -> dict[str, Any] | None:
    """``run.json`` of a run directory, or None."""
    path = run_dir / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _write_atomically(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    staging.write_text(text)
    os.replace(staging, path)


class RunDirectory:
    """An opened run directory: locked by this process (rank 0) and holding this run."""

    def __init__(self, path: Path, lock: RunLock | None) -> None:
        self.path = path
        self._lock = lock

    @classmethod
    def open(cls, run: RunConfig, resolved: dict[str, Any] | None = None, *,
             writer: bool = True) -> RunDirectory:
        """Lock, check and record the run directory of ``run`` (``writer``: rank 0; the other
        ranks only check). ``resolved``: the resolved config to write to ``config.yaml``
        (default: ``run`` itself).

        Raises:
            RunDirError: the directory is locked, or holds a run with another identity (resume
                ``auto`` or a checkpoint path), or has files but no ``run.json``.
        """
        path = Path(run.output_dir).expanduser()
        lock = RunLock(path) if writer else None
        if lock is not None:
            lock.acquire()
        try:
            if run.resume == "never":
                if writer and _holds_a_run(path):
                    aside = _aside_path(path)
                    path.rename(aside)
                    log.warning("resume=never: moved the run that was in %s to %s", path, aside)
            else:
                cls.check(path, run)
            if writer:
                cls._record(path, run, resolved)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return cls(path, lock)

    @staticmethod
    def check(path: Path, run: RunConfig) -> None:
        """Read-only: stop when ``path`` holds a run with another identity, or one without
        ``run.json``.

        Raises:
            RunDirError: naming the settings that differ and the ways out.
        """
        record = read_run_record(path)
        if record is not None:
            check_identity(record["identity"], run, f"output_dir={path}")
        elif (path / "checkpoints").is_dir() or (path / "metrics.jsonl").exists():
            raise RunDirError(f"output_dir={path} holds a run without {RUN_FILE} (its settings "
                              f"cannot be checked); pass resume=never to move it aside, or "
                              f"choose another output_dir")

    @staticmethod
    def _record(path: Path, run: RunConfig, resolved: dict[str, Any] | None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        settings = identity(run)
        record = read_run_record(path) or {"identity": settings,
                                           "fingerprint": fingerprint(settings), "commands": []}
        record["commands"].append({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                   "argv": sys.argv, "cwd": os.getcwd()})
        _write_atomically(path / RUN_FILE, json.dumps(record, indent=2, default=str))
        config = resolved if resolved is not None else dataclasses.asdict(run)
        _write_atomically(path / CONFIG_FILE, OmegaConf.to_yaml(OmegaConf.create(config)))

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
