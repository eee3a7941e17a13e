"""Where a file in results/ came from: the commit, the command and the machine that made it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from rlvr.reporting import machine

REPO = Path(__file__).resolve().parents[2]
# Thread settings and the kernels' instruction set change the order of floating-point reductions,
# so a run reproduces bit for bit only under the same ones: a result names those that were set.
NUMERIC_ENV = ("OMP_NUM_THREADS", "VLLM_CPU_OMP_THREADS_BIND", *machine.ISA_ENV)
_MACHINE = re.compile(r"Machine: `([^`]*)`")


def commit() -> str:
    """The checked-out commit (short hash), with ``+dirty`` when tracked files outside
    ``results/`` differ from it (a result being rewritten does not change the code that writes
    it); ``unknown`` outside a git checkout."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, text=True,
                                  capture_output=True).stdout.strip()
        except FileNotFoundError:  # no git on this machine
            return ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no", "--", ".",
                                      ":(exclude)results") else "")


def with_numeric_env(command: str) -> str:
    """``command`` prefixed with the thread settings of :data:`NUMERIC_ENV` that are set in this
    process and not already named in it: ``OMP_NUM_THREADS=1 python ...``."""
    prefix = [f"{name}={shlex.quote(os.environ[name])}" for name in NUMERIC_ENV
              if name in os.environ and f"{name}=" not in command]
    return " ".join([*prefix, command])


def footer(command: str) -> str:
    """The last line of a markdown result: ``Commit: `<hash>`. Command: `<command>`. Machine:
    `<CPU, instruction sets, kernels>``` (``machine.describe``)."""
    return (f"Commit: `{commit()}`. Command: `{with_numeric_env(command)}`. "
            f"Machine: `{machine.describe()}`")


def publish(table: str, out: str | Path) -> None:
    """Print a benchmark's ``table`` (ending with its ``footer``) and write it to ``out``."""
    print(table)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(table + "\n")


def png_metadata(command: str) -> dict[str, str]:
    """PNG text chunks naming the commit, command and machine (``savefig(..., metadata=...)``)."""
    return {"Comment": f"commit {commit()}", "Description": with_numeric_env(command),
            "Machine": machine.describe()}


def stored_machine(text: str) -> str | None:
    """The machine a result's footer names (``Machine: `...```), None in files written before
    results named one."""
    found = _MACHINE.search(text)
    return found[1] if found else None
