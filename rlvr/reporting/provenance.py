"""Where a file in results/ came from: the commit and the command that made it."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def commit() -> str:
    """The checked-out commit (short hash), with ``+dirty`` when tracked files differ from it;
    ``unknown`` outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, text=True,
                              capture_output=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def footer(command: str) -> str:
    """The last line of a markdown result: ``Commit: `<hash>`. Command: `<command>```."""
    return f"Commit: `{commit()}`. Command: `{command}`"


def png_metadata(command: str) -> dict[str, str]:
    """PNG text chunks naming the commit and command (``savefig(..., metadata=...)``)."""
    return {"Comment": f"commit {commit()}", "Description": command}
