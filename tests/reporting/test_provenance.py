"""A result's footer names the thread settings it was made under, once."""

import subprocess

from rlvr.reporting import provenance


def test_footer_names_the_thread_settings_that_were_set(monkeypatch):
    for name in provenance.NUMERIC_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    line = provenance.footer("python scripts/claims.py --profile tiny")
    assert "Command: `OMP_NUM_THREADS=1 python scripts/claims.py --profile tiny`. Machine: `" \
        in line


def test_a_setting_already_in_the_command_is_not_repeated(monkeypatch):
    for name in provenance.NUMERIC_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0|1")
    command = provenance.png_metadata("OMP_NUM_THREADS=1 python x.py")["Description"]
    assert command == "VLLM_CPU_OMP_THREADS_BIND='0|1' OMP_NUM_THREADS=1 python x.py"


def test_nothing_is_added_when_no_thread_setting_is_set(monkeypatch):
    for name in provenance.NUMERIC_ENV:
        monkeypatch.delenv(name, raising=False)
    assert provenance.with_numeric_env("python x.py") == "python x.py"


def test_a_rewritten_result_does_not_make_the_commit_dirty(tmp_path, monkeypatch):
    def git(*args: str) -> None:
        identity = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false",
                    "-c", "core.hooksPath=/dev/null"]
        subprocess.run(["git", *identity, *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "first")
    monkeypatch.setattr(provenance, "REPO", tmp_path)
    head = provenance.commit()
    assert len(head) >= 7 and not head.endswith("+dirty")
    (tmp_path / "results" / "table.md").write_text("new\n")
    assert provenance.commit() == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.commit() == head + "+dirty"
