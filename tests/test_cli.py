"""The command line on bad input: one line naming the key, exit status 2, no traceback, before
any model loads; HYDRA_FULL_ERROR=1 still shows the traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from rlvr import cli
from rlvr.checks import register_schema, validate

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "conf")

# the issue's list: each must fail in `python -m rlvr.train <override>` as one line naming the key
ISSUE_CASES = {
    "learner.lr=-1": "learner.lr",
    "rollout.n=1": "rollout.n",
    "resume=/nonexistent/checkpoint": "resume=/nonexistent/checkpoint",
    "algorithm=nope": "algorithm=nope",
    "seed=1.5": "seed",
    "algorithm=asym_grpo algorithm.alpha=0.3": "algorithm.alpha",
    "total_steps=-3": "total_steps",
    "rollout.max_new_tokens=abc": "rollout.max_new_tokens",
}


def _train_command(tmp_path: Path, name: str, overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "rlvr.train", *overrides, f"hydra.run.dir={tmp_path}/{name}",
            f"output_dir={tmp_path}/{name}/run", "logger=disabled"]


# the command line's own process for one case of each stage that catches them: Hydra's parse of a
# value, the schema's validation, the resume check
END_TO_END = ("rollout.max_new_tokens=abc", "learner.lr=-1", "resume=/nonexistent/checkpoint")


def test_issue_cases_fail_as_one_line_naming_the_key(tmp_path):
    """All subprocesses start together: each pays the interpreter and import start-up."""
    procs = {case: subprocess.Popen(_train_command(tmp_path, str(i), case.split()), cwd=REPO,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i, case in enumerate(END_TO_END)}
    for i, (case, proc) in enumerate(procs.items()):
        output = proc.communicate(timeout=300)[0].strip().splitlines()
        assert proc.returncode == 2, (case, output)
        assert 1 <= len(output) <= 8, (case, output)
        assert not any("Traceback" in line for line in output), (case, output)
        assert output[0].startswith("error: ") and ISSUE_CASES[case] in output[0], (case, output)
        assert not (tmp_path / str(i) / "run").exists(), f"{case}: the run started"


@pytest.mark.parametrize("case", list(ISSUE_CASES))
def test_issue_cases_fail_in_process_as_one_line_naming_the_key(capsys, case):
    code, output = _first_error(capsys, *case.split())
    assert code == 2 and len(output) == 1, output
    assert output[0].startswith("error: ") and ISSUE_CASES[case] in output[0], output


def _first_error(capsys, *overrides: str, config: str = "config") -> tuple[int, list[str]]:
    """What the command line does with ``overrides``, in this process: compose (with Hydra's
    runtime config, as in a job), check the group choices, validate."""
    register_schema()
    with initialize_config_dir(CONF, version_base="1.3"), pytest.raises(SystemExit) as exited, \
            cli.reporting_errors():
        cfg = compose(config, overrides=["output_dir=/tmp/rlvr-test-cli", *overrides],
                      return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        cli.check_group_choices()
        with open_dict(cfg):
            del cfg["hydra"]
        validate(cfg)
    captured = capsys.readouterr()
    return exited.value.code, (captured.out + captured.err).strip().splitlines()


@pytest.mark.parametrize("overrides,line", [
    (["algorithm=nope"], "error: algorithm=nope: no such option; valid options: ah_grpo, "
                         "asym_adaptive, asym_grpo, asym_sym,"),
    (["experiment=nope"], "error: experiment=nope: no such option; valid options: beta_grid,"),
    (["learner.lrate=1e-5"], "error: learner.lrate: no such key"),
    (["data.dir=/tmp"], "error: data.dir=/tmp is not read by data=arith"),
    (["eval.dir=/tmp"], "error: eval.dir=/tmp is not read by the eval benchmarks"),
    (["algorithm=ent_decrease", "rollout.n=2"], "error: rollout.n=2: algorithm.advantage="
                                                "ent_decrease compares"),
    (["seed=1.5"], "error: seed: Value '1.5' of type 'float' could not be converted to Integer"),
    (["foo=[1"], "error: could not parse the overrides"),
    (["+algorithm.beta_poss=0.1"], "error: algorithm.beta_poss: no such key in the schema"),
    (["learner.lr=inf"], "error: learner.lr must be finite, got inf"),
    (["learner.weight_decay=inf"], "error: learner.weight_decay must be finite, got inf"),
    (["algorithm=pos_reweight", "algorithm.lambda_value=nan"],
     "error: algorithm.lambda_value must be finite, got nan"),
    (["output_dir="], "error: output_dir must name a directory, got ''"),
    (["data.arith.num_train=0"], "error: data.arith.num_train must be >= 1, got 0"),
    (["device=cuda"], "error: device needs a CUDA device and torch sees none"),
])
def test_errors_read_as_one_line(capsys, overrides, line):
    code, output = _first_error(capsys, *overrides)
    assert code == 2 and len(output) == 1 and output[0].startswith(line), output


def test_evaluate_config_reports_bad_input_the_same_way(capsys):
    assert _first_error(capsys, "eval.pass_k=[0]", config="evaluate") == (
        2, ["error: eval.pass_k must be >= 1, got [0]"])


def test_hydra_full_error_shows_the_traceback(tmp_path):
    result = subprocess.run(_train_command(tmp_path, "full", ["learner.lr=-1"]), cwd=REPO,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "learner.lr must be > 0" in result.stderr


def test_torchrun_with_tensor_parallel_vllm_stops_before_any_model_loads(tmp_path):
    """As a torchrun rank sees it (WORLD_SIZE, RANK set): one ``error:`` line naming the key,
    exit status 2, no run directory (on 2 CPU ranks this configuration used to hang)."""
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    result = subprocess.run(_train_command(tmp_path, "tp", [
        "rollout.tensor_parallel_size=2", "learner.strategy=fsdp"]), cwd=REPO, env=env,
        capture_output=True, text=True, timeout=300)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 2, lines
    assert lines[0].startswith("error: rollout.tensor_parallel_size=2 cannot run under torchrun")
    assert not (tmp_path / "tp" / "run").exists()
