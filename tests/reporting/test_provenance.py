"""A result's footer names the thread settings it was made under, once."""

from rlvr.reporting import provenance


def test_footer_names_the_thread_settings_that_were_set(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    line = provenance.footer("python scripts/claims.py --profile tiny")
    assert line.endswith("Command: `OMP_NUM_THREADS=1 python scripts/claims.py --profile tiny`")


def test_a_setting_already_in_the_command_is_not_repeated(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0|1")
    command = provenance.png_metadata("OMP_NUM_THREADS=1 python x.py")["Description"]
    assert command == "VLLM_CPU_OMP_THREADS_BIND='0|1' OMP_NUM_THREADS=1 python x.py"


def test_nothing_is_added_when_no_thread_setting_is_set(monkeypatch):
    for name in provenance.NUMERIC_ENV:
        monkeypatch.delenv(name, raising=False)
    assert provenance.with_numeric_env("python x.py") == "python x.py"
