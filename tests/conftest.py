"""Test environment: offline hub, no W&B, one tiny model per session, the shared data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """The real benchmark files (never committed): $RLVR_TEST_DATA or ../shared/data."""
    candidate = Path(os.environ.get("RLVR_TEST_DATA", REPO.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


NO_DATA = "benchmark files not found: set RLVR_TEST_DATA=/path/to/data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip(NO_DATA)
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly, at the end of the run, how many tests did not run for want of the data."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if NO_DATA in str(r.longrepr)]
    if skipped:
        terminalreporter.write_sep("!", f"{len(skipped)} tests NOT RUN: {NO_DATA}", red=True,
                                   bold=True)


STAND_INS = {
    "tiny": {},  # model=tiny: Qwen2, untied embeddings
    "tiny_qwen3": {"architecture": "qwen3", "tie_word_embeddings": True},
    "tiny_tied": {"tie_word_embeddings": True},
}


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, Path]:
    """The embedded tiny models, built once into the user cache (reused across sessions); on a
    fresh machine the missing ones are built side by side (``ensure_tiny_models``)."""
    from rlvr.config import ArithConfig, TinyModelConfig
    from rlvr.tiny import ensure_tiny_models

    cache = os.environ.get("RLVR_CACHE", str(Path.home() / ".cache" / "rlvr"))
    paths = ensure_tiny_models([TinyModelConfig(**r) for r in STAND_INS.values()], ArithConfig(),
                               cache)
    return dict(zip(STAND_INS, paths, strict=True))


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_models) -> Path:
    """model=tiny: Qwen2, untied embeddings."""
    return tiny_models["tiny"]


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tiny_models) -> Path:
    """model=tiny_qwen3: Qwen3, tied embeddings, Qwen3-style chat template."""
    return tiny_models["tiny_qwen3"]


@pytest.fixture(scope="session")
def tiny_tied_dir(tiny_models) -> Path:
    """model=tiny_tied: Qwen2, tied embeddings."""
    return tiny_models["tiny_tied"]
