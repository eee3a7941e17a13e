"""What reaches the console and what only the run's train.log."""

import logging
import os
import sys

from rlvr import console


def _record(name: str, level: int) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, "message", None, None)


def test_console_shows_rlvr_info_other_warnings_and_vllm_errors():
    quiet = console.ConsoleFilter(verbose=False)
    assert quiet.filter(_record("rlvr.train", logging.INFO))
    assert quiet.filter(_record("__main__", logging.INFO))
    assert not quiet.filter(_record("transformers.modeling_utils", logging.INFO))
    assert quiet.filter(_record("transformers.modeling_utils", logging.WARNING))
    assert not quiet.filter(_record("vllm.engine.arg_utils", logging.WARNING))
    assert quiet.filter(_record("vllm.engine.arg_utils", logging.ERROR))
    assert not quiet.filter(_record("py.warnings", logging.WARNING))


def test_verbose_console_shows_everything():
    verbose = console.ConsoleFilter(verbose=True)
    assert verbose.filter(_record("vllm.engine.arg_utils", logging.INFO))
    assert verbose.filter(_record("py.warnings", logging.WARNING))


def test_run_log_keeps_third_party_info_and_native_output(tmp_path):
    import vllm  # noqa: F401  (vLLM configures its own logger at import unless told not to)

    console.setup()
    path = tmp_path / "run" / "train.log"
    with console.run_log(path):
        logging.getLogger().setLevel(logging.INFO)
        logging.getLogger("vllm.test").info("engine start-up detail")
        with console.native_output_to_run_log():
            os.write(2, b"native stderr line\n")
            print("printed line")
            sys.stdout.flush()
    text = path.read_text()
    assert "INFO vllm.test: engine start-up detail" in text
    assert "native stderr line" in text and "printed line" in text


def test_native_output_is_left_alone_outside_a_run_log(capfd):
    with console.native_output_to_run_log():
        os.write(2, b"to the console\n")
    assert "to the console" in capfd.readouterr().err
