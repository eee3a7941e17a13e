"""Where a policy's weights come from: the embedded tiny model, a local directory, or the hub."""

from __future__ import annotations

import os
import re
from pathlib import Path

from rlvr.config import ArithConfig, ModelConfig


class ModelNotFoundError(FileNotFoundError):
    """The configured model cannot be found; the message says what to do."""


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _is_hub_id(path: str) -> bool:
    """``owner/name`` with hub-legal characters, e.g. ``Qwen/Qwen2.5-1.5B-Instruct``."""
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", path) is not None


def resolve_model_path(model: ModelConfig, task: ArithConfig) -> str:
    """A directory (or, online, a hub id) that ``from_pretrained`` and vLLM can load.

    ``tiny`` builds or reuses the embedded model; an existing directory is used as is; a hub id
    (``Qwen/Qwen3-4B``) must be in the local Hugging Face cache when the hub is offline.

    Raises:
        ModelNotFoundError: for a directory that does not exist, or a hub id that is not cached
            while offline (naming the ``model.path=/local/dir`` alternative).
    """
    if model.path == "tiny":
        from rlvr.tiny import ensure_tiny_model

        return str(ensure_tiny_model(model.tiny, task, model.cache_dir))
    local = Path(model.path).expanduser()
    if local.is_dir():
        if not (local / "config.json").exists():
            raise ModelNotFoundError(f"model.path={model.path} is a directory without "
                                     f"config.json: not a Hugging Face model directory")
        return str(local)
    if not _is_hub_id(model.path):
        raise ModelNotFoundError(f"model.path={model.path} does not exist")
    if _offline():
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return snapshot_download(model.path, revision=model.revision, local_files_only=True)
        except LocalEntryNotFoundError as err:
            raise ModelNotFoundError(
                f"model.path={model.path} is a hub id, the hub is offline (HF_HUB_OFFLINE=1) and "
                f"it is not in the local cache; download it where the hub is reachable "
                f"(huggingface-cli download {model.path}) or point model.path at a local "
                f"directory: model.path=/path/to/{model.path.split('/')[-1]}") from err
    return model.path
