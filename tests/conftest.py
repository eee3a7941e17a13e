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


def _tiny(**recipe) -> Path:
    """An embedded tiny model, built once into the user cache (reused across sessions)."""
    from rlvr.config import ArithConfig, TinyModelConfig
    from rlvr.tiny import ensure_tiny_model

    cache = os.environ.get("RLVR_CACHE", str(Path.home() / ".cache" / "rlvr"))
    return ensure_tiny_model(TinyModelConfig(**recipe), ArithConfig(), cache)


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """model=tiny: Qwen2, untied embeddings."""
    return _tiny()


@pytest.fixture(scope="session")
def tiny_qwen3_dir() -> Path:
    """model=tiny_qwen3: Qwen3, tied embeddings, Qwen3-style chat template."""
    return _tiny(architecture="qwen3", tie_word_embeddings=True)


@pytest.fixture(scope="session")
def tiny_tied_dir() -> Path:
    """model=tiny_tied: Qwen2, tied embeddings."""
    return _tiny(tie_word_embeddings=True)
