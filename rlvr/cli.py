"""Command-line entry points: a configuration or input error is one line and exit status 2.

Hydra reports a bad override with its own multi-line text and a traceback, and wraps errors of
the task function in "Error executing job". Here:

- ``run`` calls a ``@hydra.main`` function with ``HYDRA_FULL_ERROR`` set so that Hydra's
  composition errors (unknown group option, wrong type, unknown key, bad syntax) reach it as
  they are, and turns them into one line;
- inside the task function (or around the compose API), ``reporting_errors`` turns
  ``INPUT_ERRORS`` (invalid values, a run directory that holds another run or is in use,
  missing model, malformed benchmark files, a checkpoint that fails its digests, a full disk)
  into one line;
- one line is ``error: <the key and what to do>`` on stderr, then exit status 2, no traceback;
  any other exception (a failure during training) propagates with its traceback.

With ``HYDRA_FULL_ERROR=1`` set by the user, every error shows its full traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from rlvr.checkpoint import CheckpointError
from rlvr.config import ConfigError
from rlvr.data.benchmarks import BenchmarkError
from rlvr.models import ModelNotFoundError

INPUT_ERRORS = (ConfigError, ModelNotFoundError, BenchmarkError, CheckpointError)
USAGE_EXIT_STATUS = 2
_FULL_ERROR = "HYDRA_FULL_ERROR"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def describe_hydra_error(err: HydraException) -> str:
    """One line for a Hydra composition error, naming the override and what is allowed."""
    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        group, _, option = err.missing_cfg_file.rpartition("/")
        if group and err.options:
            return f"{group}={option}: no such option; valid options: {', '.join(err.options)}"
    cause = err.__cause__
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None) or "?"
        reason = _first_line(getattr(cause, "msg", None) or str(cause))
        if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
            return f"{key}: no such key ({reason}); check its spelling in conf/ or rlvr/config.py"
        return f"{key}: {reason}"
    if isinstance(err, OverrideParseException):
        return (f"could not parse the overrides: {_first_line(str(err))} (syntax: "
                f"https://hydra.cc/docs/advanced/override_grammar/basic/)")
    return _first_line(str(err))


def usage_error(message: str) -> NoReturn:
    """Print ``error: message`` (one line) on stderr and exit with status 2."""
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.exit(USAGE_EXIT_STATUS)


class _Tracebacks:
    """Whether the user asked for tracebacks (``HYDRA_FULL_ERROR=1`` before ``run`` set it)."""

    wanted = os.environ.get(_FULL_ERROR) == "1"


def tracebacks_wanted() -> bool:
    """Whether the user asked for full tracebacks (``HYDRA_FULL_ERROR=1``)."""
    return _Tracebacks.wanted


def run(hydra_main: Callable[[], Any]) -> None:
    """Call ``hydra_main`` (a ``@hydra.main`` function); a composition error ends the process
    with one line and status 2, other errors keep their traceback."""
    _Tracebacks.wanted = os.environ.get(_FULL_ERROR) == "1"
    if _Tracebacks.wanted:
        hydra_main()
        return
    os.environ[_FULL_ERROR] = "1"
    try:
        with reporting_errors():
            hydra_main()
    finally:
        os.environ.pop(_FULL_ERROR, None)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn Hydra composition errors and ``INPUT_ERRORS`` raised in the block into one line
    and exit status 2 (unless the user set ``HYDRA_FULL_ERROR=1``)."""
    try:
        yield
    except HydraException as err:
        if _Tracebacks.wanted:
            raise
        usage_error(describe_hydra_error(err))
    except INPUT_ERRORS as err:
        if _Tracebacks.wanted:
            raise
        usage_error(str(err))


def check_group_choices() -> None:
    """Inside a Hydra job: every chosen config-group option exists. Hydra skips an ``optional``
    group's missing option silently (``experiment=typo`` would run the defaults).

    Raises:
        ConfigError: naming the group, the option and the valid options.
    """
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    loader = GlobalHydra.instance().config_loader()
    for group, option in HydraConfig.get().runtime.choices.items():
        if option is None or group.startswith("hydra/"):
            continue
        options = loader.get_group_options(group)
        if options and option not in options:
            raise ConfigError(f"{group}={option}: no such option; valid options: "
                              f"{', '.join(options)}")
