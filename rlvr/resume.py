"""Where a run continues from: the checkpoint a resume starts at, and runs already finished."""

from __future__ import annotations

import json
from pathlib import Path

from rlvr.checkpoint import (
    CheckpointError,
    checkpoint_step,
    latest_checkpoint,
    select_checkpoint,
    supersede_after,
    verify_checkpoint,
)
from rlvr.config import ConfigError, RunConfig
from rlvr.learner import distributed
from rlvr.run_dir import check_identity


def checkpoint_to_resume(run: RunConfig, run_dir: Path) -> Path | None:
    """The verified checkpoint this run continues from (None: from the start), chosen on rank 0
    before any model loads and broadcast: ``resume=auto`` the newest that verifies (falling back
    past corrupt ones), a checkpoint path that one, which must verify. Its recorded identity must
    be this run's; the run directory's checkpoints after it are superseded.

    Raises:
        CheckpointError: the named checkpoint fails its digests, or none verifies.
        RunDirError: the checkpoint was made by a run with other settings.
    """
    if run.resume == "never":
        return None
    chosen: Path | None = None
    failure = None
    if distributed.rank() == 0:
        try:
            if run.resume == "auto":
                chosen = select_checkpoint(run_dir)
            else:
                chosen = Path(run.resume).expanduser()
                verify_checkpoint(chosen)
            if chosen is not None:
                state = json.loads((chosen / "state.json").read_text())
                check_identity(state.get("identity", {}), run, f"checkpoint {chosen}")
                supersede_after(run_dir, checkpoint_step(chosen))
        except (CheckpointError, ConfigError) as err:
            failure = err
    chosen, failure = distributed.from_rank0((chosen, failure))
    if failure is not None:
        raise failure
    return chosen


def finished_step(run: RunConfig, run_dir: Path) -> int | None:
    """The step of the checkpoint a resume would start from, when it is at or past
    ``total_steps`` (nothing to train); else None.

    Raises:
        ConfigError: the checkpoint is past ``total_steps`` (the run went further already).
    """
    if run.resume == "never":
        return None
    checkpoint = latest_checkpoint(run_dir) if run.resume == "auto" else Path(run.resume)
    if checkpoint is None:
        return None
    step = checkpoint_step(checkpoint)
    if step < run.total_steps:
        return None
    if step > run.total_steps:
        raise ConfigError(f"total_steps={run.total_steps} is below step {step} of the checkpoint "
                          f"{checkpoint}: the run in {run_dir} went further already; pass "
                          f"total_steps={step} or more, or resume=never to start a "
                          f"{run.total_steps}-step run")
    return step


def nothing_to_train(run_dir: Path, step: int, total_steps: int) -> str:
    """The one line of a resume whose checkpoint is already at (or past) ``total_steps``."""
    return (f"nothing to train: {run_dir} is at step {step} and total_steps={total_steps}; its "
            f"results are in that directory (raise total_steps to train on)")
