"""``python -m rlvr.plan <overrides> plan.gpus=N plan.gpu_memory_gib=M``: the memory plan of a run.

The overrides compose on ``conf/`` as for ``python -m rlvr.train`` (``experiment=...``,
``learner.gradient_checkpointing=true``). Prints every term per GPU (rlvr/plan/memory.py) and
ends with ``fits: peak X GiB of M GiB per GPU`` (exit 0) or ``does not fit: ...; <remedies>``
(exit 1); a configuration error is one line and exit 2 (rlvr/cli.py). No model is loaded: the
shape comes from the model's config.json (local directory or hub cache) or the built-in table.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from rlvr import cli
from rlvr.checks import register_schema, validate
from rlvr.plan.memory import Plan, plan_run

CONF = Path(__file__).resolve().parents[2] / "conf"


def plan_from_overrides(overrides: list[str]) -> Plan:
    """Compose ``overrides`` on conf/config.yaml, validate, and plan (no model is loaded)."""
    register_schema()
    if not any(o.startswith("output_dir=") for o in overrides):
        overrides = [*overrides, "output_dir=runs/plan"]  # never written; Hydra's is unset here
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        cli.check_group_choices()  # experiment=typo would plan the defaults otherwise
    with open_dict(cfg):
        del cfg["hydra"]
    run = validate(cfg)
    run.plan.validate()
    return plan_run(run)


def main(argv: list[str] | None = None) -> int:
    """Print the plan; 0 if it fits, 1 if not (configuration errors exit 2)."""
    with cli.reporting_errors():
        plan = plan_from_overrides(list(sys.argv[1:] if argv is None else argv))
    print(plan.table())
    return 0 if plan.fits else 1


if __name__ == "__main__":
    sys.exit(main())
