"""File digests of a directory: written once, checked before the directory is trusted.

A manifest ``{relative path: {"bytes": size, "sha256": hex}}`` covers every file below a
directory except the manifest itself. Checkpoints (rlvr/checkpoint.py) and the embedded tiny
models' cache (rlvr/tiny.py) write one and check it before loading.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

_CHUNK = 16 << 20


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_digests(directory: Path, manifest: str) -> dict[str, dict[str, Any]]:
    """The manifest of ``directory``: size and SHA-256 of every file but ``manifest``, hashed
    on a few threads (hashlib releases the GIL)."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != manifest)
    with ThreadPoolExecutor(max_workers=4) as pool:
        hashes = list(pool.map(sha256, files))
    return {str(p.relative_to(directory)): {"bytes": p.stat().st_size, "sha256": h}
            for p, h in zip(files, hashes, strict=True)}


def write_manifest(directory: Path, manifest: str) -> None:
    """Hash the files of ``directory`` as they are on disk and write ``manifest`` last."""
    digests = file_digests(directory, manifest)
    (directory / manifest).write_text(json.dumps(digests, indent=2))


def manifest_problem(directory: Path, manifest: str) -> str | None:
    """What is wrong with ``directory`` against its ``manifest`` (the first file that is
    missing, of another size or another digest; a missing or unreadable manifest), or None."""
    path = directory / manifest
    if not path.is_file():
        return f"it has no {manifest}"
    try:
        recorded = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return f"{manifest} is unreadable ({err})"
    for name, expected in recorded.items():
        file = directory / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != expected["bytes"]:
            return f"{name} has {file.stat().st_size} bytes, {expected['bytes']} were written"
        if sha256(file) != expected["sha256"]:
            return f"{name} does not match its digest (the file changed after it was written)"
    return None
