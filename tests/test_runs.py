"""A run is the run its config says: run identity, one run per directory, moving an old run
aside, the metrics file, verified checkpoints, and input errors before any model loads."""

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import rlvr.build as build_module
from rlvr import checkpoint as ckpt
from rlvr.config import ArithConfig, ConfigError, TinyModelConfig, run_name
from rlvr.data.benchmarks import BenchmarkError, load_benchmark
from rlvr.digests import write_manifest
from rlvr.rollout.limits import check_prompt_lengths, drop_long_prompts
from rlvr.run_dir import RunDirectory, RunDirError, differences, identity, read_run_record
from rlvr.tracking import truncate_jsonl
from rlvr.train import Trainer
from tests.configs import tiny_run_config

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _run(out: Path, *overrides: str):
    return tiny_run_config(out, "resume=auto", *overrides)


# --- identity ---------------------------------------------------------------------------------

def test_identity_differs_in_exactly_the_changed_setting(tmp_path):
    a = identity(_run(tmp_path, "algorithm=asym_grpo", "algorithm.beta_pos=0.3"))
    b = identity(_run(tmp_path, "algorithm=asym_grpo", "algorithm.beta_pos=0.9"))
    assert differences(a, b) == ["algorithm.beta_pos 0.3 -> 0.9"]
    for change, key in [("rollout.n=4", "rollout.n"), ("learner.lr=3e-5", "learner.lr"),
                        ("algorithm=neg_only", "algorithm.name")]:
        c = identity(_run(tmp_path, "algorithm=asym_grpo", "algorithm.beta_pos=0.3", change))
        assert any(d.startswith(f"{key} ") for d in differences(a, c)), change


def test_logging_schedules_paths_and_a_constant_horizon_may_differ(tmp_path):
    base = identity(_run(tmp_path))
    same = identity(_run(tmp_path / "elsewhere", "total_steps=500", "eval.every_n_steps=5",
                         "checkpoint_every=3", "keep_checkpoints=4", "logger.samples_every=2",
                         "device=cpu", "experiment_name=other"))
    assert differences(base, same) == []


def test_the_horizon_is_part_of_the_run_when_a_schedule_depends_on_it(tmp_path):
    for extra in (["learner.lr_schedule=cosine"], ["algorithm=pos_reweight_linear"]):
        a = identity(_run(tmp_path, *extra, "total_steps=10"))
        b = identity(_run(tmp_path, *extra, "total_steps=20"))
        assert differences(a, b) == ["total_steps 10 -> 20"], extra


def test_run_names_record_the_overrides_that_change_results():
    assert run_name([], 0) == "seed0"
    assert run_name(["algorithm=asym_grpo", "algorithm.beta_pos=0.3", "total_steps=3"], 1) == \
        "algorithm.beta_pos=0.3/seed1"
    assert run_name(["rollout.n=4", "+algorithm.beta_neg=0.2", "logger=disabled",
                     "logger.wandb_mode=offline", "seed=3", "data.dir=/d",
                     "model.path=/models/Qwen3-4B"], 3) == \
        "algorithm.beta_neg=0.2,model.path=_models_Qwen3-4B,rollout.n=4/seed3"
    assert run_name(["algorithm.beta_pos=0.3"], 0) != run_name(["algorithm.beta_pos=0.9"], 0)
    long = run_name([f"eval.benchmarks=[{'x' * 300}]"], 0)
    assert len(long.split("/")[0]) == 160 and long.endswith("/seed0")


# --- the run directory ------------------------------------------------------------------------

def test_a_directory_holding_another_run_stops_a_resume_naming_the_key(tmp_path):
    first = RunDirectory.open(_run(tmp_path, "algorithm=asym_grpo", "algorithm.beta_pos=0.3"))
    first.close()
    with pytest.raises(RunDirError, match=r"algorithm\.beta_pos 0\.3 -> 0\.9.*resume=never"):
        RunDirectory.open(_run(tmp_path, "algorithm=asym_grpo", "algorithm.beta_pos=0.9"))
    assert read_run_record(tmp_path)["identity"]["algorithm.beta_pos"] == 0.3
    again = RunDirectory.open(_run(tmp_path, "algorithm=asym_grpo", "algorithm.beta_pos=0.3",
                                   "total_steps=7"))
    again.close()
    assert len(read_run_record(tmp_path)["commands"]) == 2


def test_resume_never_moves_the_old_run_aside_whole(tmp_path):
    out = tmp_path / "run"
    RunDirectory.open(_run(out, "algorithm=asym_grpo", "algorithm.beta_pos=0.3")).close()
    (out / "metrics.jsonl").write_text('{"step": 1}\n')
    RunDirectory.open(tiny_run_config(out, "algorithm=asym_grpo", "algorithm.beta_pos=0.9")
                      ).close()
    [aside] = [p for p in tmp_path.iterdir() if p.name.startswith("run.")]
    assert read_run_record(aside)["identity"]["algorithm.beta_pos"] == 0.3
    assert (aside / "metrics.jsonl").read_text() == '{"step": 1}\n'
    assert read_run_record(out)["identity"]["algorithm.beta_pos"] == 0.9
    assert not (out / "metrics.jsonl").exists()


def test_a_directory_with_a_run_but_no_record_is_not_resumed(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(RunDirError, match=r"without run\.json"):
        RunDirectory.open(_run(tmp_path))


def test_a_second_run_into_a_locked_directory_fails_naming_the_holder(tmp_path):
    held = RunDirectory.open(_run(tmp_path))
    try:
        with pytest.raises(RunDirError, match=f"in use by another run \\(PID {os.getpid()}\\)"):
            RunDirectory.open(_run(tmp_path))
    finally:
        held.close()
    RunDirectory.open(_run(tmp_path)).close()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    code = ("import sys, time; from tests.configs import tiny_run_config; "
            "from rlvr.run_dir import RunDirectory; "
            f"RunDirectory.open(tiny_run_config({str(tmp_path)!r}, 'resume=auto')); "
            "print('locked', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=ENV,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=f"PID {child.pid}"):
            RunDirectory.open(_run(tmp_path))
    finally:
        child.kill()
        child.wait()
    RunDirectory.open(_run(tmp_path)).close()


# --- the metrics file -------------------------------------------------------------------------

def test_truncation_drops_a_partial_last_line_with_a_warning(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "a": 1}\n{"step": 2, "a": 2}\n{"step": 3, "a": 3}\n'
                    '{"step": 4, "a"')
    with caplog.at_level(logging.WARNING):
        truncate_jsonl(path, 2)
    assert path.read_text() == '{"step": 1, "a": 1}\n{"step": 2, "a": 2}\n'
    assert "metrics.jsonl:4: dropped a partial last line" in caplog.text


def test_a_broken_line_before_the_last_names_the_file_and_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"ste\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl:2: not a JSON record"):
        truncate_jsonl(path, 5)


def test_a_kill_before_the_rename_leaves_the_metrics_whole(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    text = '{"step": 1}\n{"step": 2}\n{"step": 3}\n'
    path.write_text(text)

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        truncate_jsonl(path, 1)
    assert path.read_text() == text


# --- checkpoints ------------------------------------------------------------------------------

def _fake_checkpoint(run_dir: Path, step: int) -> Path:
    path = run_dir / "checkpoints" / f"step_{step:06d}"
    (path / "policy").mkdir(parents=True)
    (path / "policy" / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (path / "trainer-rank0.pt").write_bytes(b"state" * 100)
    (path / "state.json").write_text(json.dumps({"step": step}))
    write_manifest(path, "digests.json")
    return path


@pytest.mark.parametrize("damage", ["zero_tail", "truncate", "garbage", "delete"])
def test_a_damaged_checkpoint_is_named_and_resume_falls_back(tmp_path, damage, caplog):
    good = _fake_checkpoint(tmp_path, 2)
    bad = _fake_checkpoint(tmp_path, 4)
    weights = bad / "policy" / "model.safetensors"
    data = weights.read_bytes()
    if damage == "zero_tail":
        weights.write_bytes(data[:-100] + bytes(100))
    elif damage == "truncate":
        weights.write_bytes(data[:1000])
    elif damage == "garbage":
        (bad / "trainer-rank0.pt").write_bytes(b"\x00garbage" * 62 + b"xxxx")
    else:
        weights.unlink()
    with pytest.raises(ckpt.CheckpointError, match=f"checkpoint {bad} fails its check"):
        ckpt.verify_checkpoint(bad)
    with caplog.at_level(logging.WARNING):
        assert ckpt.select_checkpoint(tmp_path) == good
    assert "falling back to the previous checkpoint" in caplog.text
    assert (tmp_path / "checkpoints" / "corrupt-step_000004").is_dir()
    assert ckpt.latest_checkpoint(tmp_path) == good


def test_no_verified_checkpoint_left_stops_with_one_line(tmp_path):
    only = _fake_checkpoint(tmp_path, 2)
    (only / "state.json").write_text(json.dumps({"step": 3}))
    with pytest.raises(ckpt.CheckpointError, match=r"no checkpoint of .* verifies"):
        ckpt.select_checkpoint(tmp_path)


def test_checkpoints_after_the_resumed_step_are_superseded_not_deleted(tmp_path):
    for step in (2, 4, 6):
        _fake_checkpoint(tmp_path, step)
    ckpt.supersede_after(tmp_path, 2)
    assert [p.name for p in ckpt.complete_checkpoints(tmp_path)] == ["step_000002"]
    superseded = tmp_path / "checkpoints" / "superseded"
    assert sorted(p.name for p in superseded.iterdir()) == ["step_000004", "step_000006"]


def _small_filesystem(path: Path, size: str) -> bool:
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_names_enospc_and_the_path(tmp_path):
    class Holder:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1000))], lr=0.1)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)

    disk = tmp_path / "disk"
    if not _small_filesystem(disk, "64k"):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    with contextlib.suppress(OSError):  # fill the filesystem
        (disk / "fill").write_bytes(bytes(64 << 10))
    try:
        with pytest.raises(ckpt.CheckpointError, match=r"no space left on device \(ENOSPC\) "
                                                       r"while writing .*disk/state\.pt"):
            ckpt.save_trainer_state(disk / "state.pt", Holder())
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def _trained(out: Path, *overrides: str) -> Trainer:
    trainer = Trainer(tiny_run_config(out, "resume=auto", "prompts_per_step=2", "rollout.n=4",
                                      "rollout.max_new_tokens=16", *overrides), {})
    try:
        trainer.fit()
    finally:
        trainer.close()
    return trainer


def test_a_full_disk_during_a_save_keeps_the_earlier_checkpoint(tmp_path, tiny_model_dir):
    """The tiny model's checkpoint is about 6 MB; a 9 MB filesystem takes the first, not the
    second."""
    disk = tmp_path / "disk"
    if not _small_filesystem(disk, "9m"):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        with pytest.raises(ckpt.CheckpointError, match=r"ENOSPC\) while writing .*step_000002"):
            _trained(disk / "run", "total_steps=2", "checkpoint_every=1", "keep_checkpoints=3")
        assert [p.name for p in ckpt.complete_checkpoints(disk / "run")] == ["step_000001"]
        ckpt.verify_checkpoint(disk / "run" / "checkpoints" / "step_000001")
        assert not list((disk / "run" / "checkpoints").glob(".staging-*"))
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_nonfinite_weights_are_never_saved(tmp_path, tiny_model_dir):
    trainer = Trainer(tiny_run_config(tmp_path), {})
    try:
        with torch.no_grad():
            next(trainer.policy.parameters())[0].fill_(float("nan"))
        with pytest.raises(ckpt.CheckpointError, match="not finite"):
            trainer.save(1)
    finally:
        trainer.close()
    assert not (tmp_path / "checkpoints").exists() or not any(
        (tmp_path / "checkpoints").iterdir())


def _metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(("time/", "throughput/"))}
            for r in rows]


def test_a_corrupt_latest_checkpoint_resumes_from_the_previous_to_the_same_metrics(
        tmp_path, tiny_model_dir):
    """The zeroed-tail case of the issue: the step-3 checkpoint fails its digests, the run
    resumes from step 2, recomputes step 3 exactly, and the corrupt one is kept aside."""
    straight = tmp_path / "straight"
    _trained(straight, "total_steps=3", "checkpoint_every=1", "keep_checkpoints=2")
    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)
    weights = resumed / "checkpoints" / "step_000003" / "policy" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-4096] + bytes(4096))
    trainer = _trained(resumed, "total_steps=3", "checkpoint_every=1", "keep_checkpoints=2")
    assert trainer.start_step == 2
    assert _metrics(resumed) == _metrics(straight)
    assert (resumed / "checkpoints" / "corrupt-step_000003").is_dir()
    assert [p.name for p in ckpt.complete_checkpoints(resumed)] == ["step_000002", "step_000003"]


@pytest.mark.parametrize("stage", ["staging_without_digests", "staging_complete_not_renamed"])
def test_a_kill_at_any_stage_of_a_save_resumes_to_the_uninterrupted_metrics(
        tmp_path, tiny_model_dir, stage):
    """What kill -9 leaves at each stage of saving the step-3 checkpoint (a staging directory
    without digests.json, or complete but not yet renamed; metrics logged up to step 3) is
    resumed from step 2 to the metrics of the run that was not killed."""
    straight = tmp_path / "straight"
    _trained(straight, "total_steps=3", "checkpoint_every=1", "keep_checkpoints=3")
    killed = tmp_path / "killed"
    shutil.copytree(straight, killed)
    root = killed / "checkpoints"
    staging = root / ".staging-step_000003"
    (root / "step_000003").rename(staging)
    if stage == "staging_without_digests":
        (staging / "digests.json").unlink()
        (staging / "trainer-rank0.pt").write_bytes(b"partial")
    (killed / "summary.json").unlink()
    assert _trained(killed, "total_steps=3", "checkpoint_every=1",
                    "keep_checkpoints=3").start_step == 2
    assert _metrics(killed) == _metrics(straight)


# --- input errors -----------------------------------------------------------------------------

def _gsm8k_file(tmp_path: Path, content: bytes) -> str:
    (tmp_path / "gsm8k").mkdir(exist_ok=True)
    (tmp_path / "gsm8k" / "test.jsonl").write_bytes(content)
    return str(tmp_path)


GOOD = b'{"question": "1+1?", "answer": "so #### 2"}\n'
LATIN1 = b'{"question": "caf\xe9", "answer": "#### 1"}\n'


@pytest.mark.parametrize("content,message", [
    (GOOD + b'{"question": "2+2?", "answer": \n', r"test\.jsonl:2: not valid JSON"),
    (GOOD + LATIN1, rf"test\.jsonl:2: not UTF-8 \(byte offset {len(GOOD) + LATIN1.index(0xE9)}:"),
    (GOOD + b'[1, 2]\n', r"test\.jsonl:2: a row must be a JSON object, got list"),
    (GOOD + GOOD + b'{"question": "3+3?"}\n', r"test\.jsonl:3: .*missing field 'answer'"),
    (GOOD + b'{"question": null, "answer": "#### 4"}\n', r"test\.jsonl:2: .*'question' is null"),
    (GOOD + b'{"question": "5+5?", "answer": "10"}\n', r"test\.jsonl:2: .*has no '####'"),
])
def test_malformed_benchmark_rows_name_the_file_and_line(tmp_path, content, message):
    with pytest.raises(BenchmarkError, match=message):
        load_benchmark("gsm8k", "test", data_dir=_gsm8k_file(tmp_path, content))


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    [problem] = load_benchmark("gsm8k", "test",
                               data_dir=_gsm8k_file(tmp_path, b"\xef\xbb\xbf" + GOOD))
    assert (problem.problem, problem.answer) == ("1+1?", "2")


def test_prompts_that_leave_no_room_in_the_context_are_an_error():
    with pytest.raises(ConfigError, match=r"data=gsm8k: 2 of 3 prompts .* 64 new tokens .* "
                                          r"context of 256 tokens \(the longest prompt has 250"):
        check_prompt_lengths("data=gsm8k", [10, 200, 250], 64, 256)
    check_prompt_lengths("data=gsm8k", [10, 192], 64, 256)
    assert drop_long_prompts([[1] * 5, [1] * 50, [1] * 6], 6) == [0, 2]


def test_a_prompt_too_long_for_the_context_stops_before_the_model_loads(tmp_path, monkeypatch,
                                                                       tiny_model_dir):
    long_question = "7 " * 600
    rows = [{"question": "1+1?", "answer": "#### 2"},
            {"question": long_question, "answer": "#### 3"}]
    data = tmp_path / "data"
    (data / "gsm8k").mkdir(parents=True)
    (data / "gsm8k" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def no_model(*args, **kwargs):
        raise AssertionError("the model loaded before the prompts were checked")

    monkeypatch.setattr(build_module, "load_policy", no_model)
    run = tiny_run_config(tmp_path / "run", "data=gsm8k", f"data.dir={data}")
    with pytest.raises(ConfigError, match=r"data=gsm8k: 1 of 2 prompts"):
        Trainer(run, {})
    RunDirectory.open(run).close()  # the failed start-up released its lock


def test_a_tiny_model_cache_that_fails_its_check_is_rebuilt(tmp_path, tiny_model_dir,
                                                          monkeypatch):
    import rlvr.tiny as tiny

    cache = tmp_path / "cache"
    target = cache / "tiny" / tiny.recipe_hash(TinyModelConfig(), ArithConfig())
    shutil.copytree(tiny_model_dir, target)
    weights = target / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64] + bytes(64))
    built = []

    def build(recipe, task, out_dir):
        built.append(out_dir)
        shutil.copytree(tiny_model_dir, out_dir, ignore=shutil.ignore_patterns(tiny.MANIFEST))

    monkeypatch.setattr(tiny, "build_tiny_model", build)
    assert tiny.ensure_tiny_model(TinyModelConfig(), ArithConfig(), cache) == target
    assert len(built) == 1
    assert weights.read_bytes() == (tiny_model_dir / "model.safetensors").read_bytes()
    assert tiny.ensure_tiny_model(TinyModelConfig(), ArithConfig(), cache) == target
    assert len(built) == 1, "a cache that passes its check is reused"


# --- the command line -------------------------------------------------------------------------

def _train(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rlvr.train", *args, "rollout=hf",
                           "logger=disabled", "prompts_per_step=4",
                           "eval.benchmarks=[{name:arith_l1,k:1,limit:4}]"], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=600)


def test_a_hand_run_with_another_setting_gets_its_own_directory_and_a_clash_is_refused(
        tmp_path, tiny_model_dir):
    first = _train("algorithm=asym_grpo", "algorithm.beta_pos=0.3", "total_steps=1",
                   cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    run_dir = tmp_path / "runs/default/asym_grpo" / (
        "algorithm.beta_pos=0.3,eval.benchmarks=[{name:arith_l1,k:1,limit:4}],"
        "prompts_per_step=4,rollout=hf")
    assert read_run_record(run_dir / "seed0")["identity"]["algorithm.beta_pos"] == 0.3
    metrics = (run_dir / "seed0" / "metrics.jsonl").read_text()
    again = _train("algorithm=asym_grpo", "algorithm.beta_pos=0.3", "total_steps=1",
                   cwd=tmp_path)
    assert again.returncode == 0
    assert "nothing to train" in again.stderr + again.stdout
    clash = _train("algorithm=asym_grpo", "algorithm.beta_pos=0.9", "total_steps=1",
                   f"hydra.run.dir='{run_dir / 'seed0'}'", cwd=tmp_path)
    lines = clash.stderr.strip().splitlines()
    assert clash.returncode == 2 and len(lines) == 1, clash.stderr
    assert "algorithm.beta_pos 0.3 -> 0.9" in lines[0] and "resume=never" in lines[0]
    assert (run_dir / "seed0" / "metrics.jsonl").read_text() == metrics


def test_a_sweep_with_an_invalid_point_stops_before_any_job(tmp_path):
    result = _train("-m", "algorithm=asym_grpo", "algorithm.beta_pos=0.5,-1,0.7", "total_steps=1",
                    f"hydra.sweep.dir={tmp_path}/sweep")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert lines[-1].startswith("error: sweep point 2/3 (") and "beta_pos=-1" in lines[-1]
    assert "no job was started" in lines[-1]
    assert not list((tmp_path / "sweep").rglob("run.json"))


def test_two_sweep_points_into_one_directory_are_refused(tmp_path):
    result = _train("-m", "total_steps=1,2", f"hydra.sweep.dir={tmp_path}/sweep")
    assert result.returncode == 2, result.stderr
    assert "would both write" in result.stderr.strip().splitlines()[-1]


def test_a_signalled_run_resumes_to_the_uninterrupted_metrics(tmp_path, tiny_model_dir):
    """SIGTERM and SIGINT after the first checkpoint, then the same command: the metrics of the
    run that was not stopped."""
    command = [sys.executable, "-m", "rlvr.train", "rollout=hf", "logger=disabled",
               "total_steps=3", "checkpoint_every=1", "rollout.max_new_tokens=16",
               "prompts_per_step=2", "rollout.n=4", "eval.benchmarks=[]"]

    def run(out: Path) -> None:
        subprocess.run([*command, f"hydra.run.dir={out}"], cwd=REPO, env=ENV, check=True,
                       capture_output=True, timeout=600)

    straight = tmp_path / "straight"
    run(straight)
    for sig in (signal.SIGTERM, signal.SIGINT):
        stopped = tmp_path / sig.name
        proc = subprocess.Popen([*command, f"hydra.run.dir={stopped}"], cwd=REPO, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        marker = stopped / "checkpoints" / "step_000001" / "digests.json"
        deadline = time.time() + 600
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(sig)
        proc.wait()
        run(stopped)
        assert _metrics(stopped) == _metrics(straight), sig.name
