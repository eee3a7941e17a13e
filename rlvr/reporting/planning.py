"""A table row's run configuration for one seed, composed and validated without loading a model.

``row_overrides`` lists the Hydra overrides of (profile, row, seed) in the order that decides
(profile, algorithm, row, the base row's zero steps, seed, output directory, then ``extra``);
``compose_run`` composes them against ``conf/`` and validates them into a ``RunConfig``
(rlvr/checks.py). Both ``scripts/reproduce.py`` (which trains the runs) and the claims
(``rlvr.reporting.claim_runs``, which compares their identities) go through here, so a row is
the same configuration wherever it is planned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rlvr.checks import register_schema, validate
from rlvr.config import RunConfig
from rlvr.reporting.tables import Row

CONF = Path(__file__).resolve().parents[2] / "conf"


def row_overrides(profile_overrides: tuple[str, ...], row: Row, seed: int, out: Path,
                  extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The overrides of one (row, seed) under a profile; the base row (no algorithm) trains
    zero steps."""
    steps = ["total_steps=0"] if row.algorithm is None else []
    return [*profile_overrides, f"algorithm={row.algorithm or 'grpo'}", *row.overrides, *steps,
            f"seed={seed}", f"output_dir={out}", *extra]


def compose_run(overrides: list[str]) -> tuple[RunConfig, dict[str, Any]]:
    """The validated run configuration of ``overrides`` and its resolved dict.

    Raises:
        rlvr.config.ConfigError: naming the key of a value out of range.
    """
    register_schema()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return validate(cfg), OmegaConf.to_container(cfg, resolve=True)
