"""Every point of a Hydra multirun is checked before the first job starts.

Hydra's basic sweeper composes each job's config up front but validates values only when the
job runs: ``-m algorithm.beta_pos=0.5,-1,0.7`` would train the first point, fail the second and
never run the third. ``ValidateSweep`` (a Hydra callback, registered in conf/config.yaml) expands
the sweep as the basic sweeper does, and for every point composes the config, checks its group
choices and values (``rlvr.checks.validate``), and checks its run directory (rlvr/run_dir.py:
a directory that holds a run with other settings); two points that would write into one
directory are an error too. The first failure stops the sweep before any job runs, naming the
point.
"""

from __future__ import annotations

import copy
import os
import traceback
from pathlib import Path
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from rlvr.checks import validate
from rlvr.config import ConfigError

_BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def sweep_points(config: DictConfig) -> list[list[str]]:
    """The override lists of every job of the basic sweeper's sweep (preset params first, then
    the command line's, as the sweeper orders them)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.params or {}).items()]
    arguments = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    batches = BasicSweeper.split_arguments(parser.parse_overrides([*params, *arguments]), None)
    return [list(job) for batch in batches for job in batch]


def _job_config(master: DictConfig, job: list[str]) -> DictConfig:
    """A job's config as the launcher builds it, with its runtime output directory set."""
    config = GlobalHydra.instance().config_loader().load_sweep_config(master, job)
    with open_dict(config):
        config.hydra.job.num = 0
        out = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
        config.hydra.runtime.output_dir = os.path.abspath(out)
    return config


def check_point(config: DictConfig) -> Path:
    """Validate one job's config (in its Hydra context); returns its output directory.

    Raises:
        ConfigError: an invalid value or group choice, or a run directory holding another run.
    """
    from rlvr import cli
    from rlvr.run_dir import RunDirectory

    HydraConfig.instance().set_config(config)
    cli.check_group_choices()
    task = copy.deepcopy(config)
    with open_dict(task):
        del task["hydra"]
    run = validate(task)
    if run.resume != "never":
        RunDirectory.check(Path(run.output_dir).expanduser(), run)
    return Path(run.output_dir).expanduser().resolve()


class ValidateSweep(Callback):
    """Hydra callback: check every point of a multirun before the first job starts. Hydra
    turns a callback's exceptions into warnings, so a failure ends the process here: one
    ``error:`` line (``rlvr.cli``) and exit status 2."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.sweeper.get("_target_") != _BASIC_SWEEPER:
            return
        from rlvr import cli

        try:
            check_sweep(config)
        except cli.INPUT_ERRORS as err:
            if cli.tracebacks_wanted():
                traceback.print_exc()
            cli.usage_error(str(err))


def check_sweep(config: DictConfig) -> None:
    """Check every point of the sweep of ``config`` (see the module docstring).

    Raises:
        ConfigError: the first point that fails, named with its overrides.
    """
    jobs = sweep_points(config)
    owners: dict[Path, str] = {}
    try:
        for index, job in enumerate(jobs):
            label = f"sweep point {index + 1}/{len(jobs)} ({' '.join(job) or 'no overrides'})"
            try:
                out = check_point(_job_config(config, job))
            except ConfigError as err:
                raise ConfigError(f"{label}: {err}; no job was started") from err
            if out in owners:
                raise ConfigError(f"{label} and {owners[out]} would both write {out}; make them "
                                  f"differ in a setting the directory name records; no job was "
                                  f"started")
            owners[out] = label
    finally:
        HydraConfig.instance().set_config(config)
