"""The protocol-noise report: window values, seed stds and the one-configuration check, on
hand-made runs."""

import argparse
import importlib.util
import json
import math
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("protocol_noise",
                                              REPO / "scripts" / "protocol_noise.py")
protocol_noise = importlib.util.module_from_spec(spec)
spec.loader.exec_module(protocol_noise)


def _run(root: Path, seed: int, evals: list[float], identity: dict | None = None,
         finished: bool = True) -> Path:
    run = root / "table2_tiny_lownoise" / "grpo" / f"seed{seed}"
    run.mkdir(parents=True)
    lines = []
    for i, value in enumerate(evals):
        step = 5 * i
        if step:
            lines.append({"step": step, "adv/reward_mean": 0.5, "train/entropy": 0.1 * seed,
                          "time/elapsed": 10.0 + 6 * step})
        lines.append({"step": step, "eval/average": value, "time/elapsed": 10.0 + 6 * step})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (run / "run.json").write_text(json.dumps(
        {"identity": {"algorithm.name": "grpo", "prompts_per_step": 16, **(identity or {}),
                      "seed": seed}}))
    if finished:
        (run / "summary.json").write_text(json.dumps({"machine": "AMD EPYC (x86_64: avx2 fma)",
                                                      "commit": "abc1234"}))
    return run


def test_window_stds_against_the_hand_computation(tmp_path):
    # seeds' last three evaluations: (0.40, 0.50, 0.60), (0.50, 0.50, 0.50), (0.60, 0.70, 0.80)
    _run(tmp_path, 0, [0.2, 0.4, 0.5, 0.6])
    _run(tmp_path, 1, [0.2, 0.5, 0.5, 0.5])
    _run(tmp_path, 2, [0.2, 0.6, 0.7, 0.8])
    _run(tmp_path, 3, [0.2, 0.1], finished=False)  # unfinished: left out
    runs = protocol_noise.load_protocol(tmp_path)
    assert sorted(runs) == [0, 1, 2]
    assert protocol_noise.window_value(runs[2], 3) == pytest.approx(0.7)
    text = protocol_noise.report({"lownoise": runs}, [1, 3], "python scripts/protocol_noise.py")
    # final: 60, 50, 80 -> std sqrt(((-3.33)^2 + (-13.33)^2 + 16.67^2) / 2) = 15.28
    # window 3: 50, 50, 70 -> std sqrt((6.67^2 * 2 + 13.33^2) / 2) = 11.55
    final = math.sqrt(((60 - 190 / 3) ** 2 + (50 - 190 / 3) ** 2 + (80 - 190 / 3) ** 2) / 2)
    window = math.sqrt(((50 - 170 / 3) ** 2 * 2 + (70 - 170 / 3) ** 2) / 2)
    assert f"| lownoise | 3 (0-2) | 1 | 15 | 63.33 % | {final:.2f} [" in text
    assert f"| lownoise | 3 (0-2) | 3 | 5, 10, 15 | 56.67 % | {window:.2f} [" in text
    # training entropy at the last step: 0.0, 0.1, 0.2 -> std 0.1; 15 steps of 6 s -> 1.5 min
    assert "| 0.1000 nats | 1.5 |" in text
    assert "made on: `AMD EPYC (x86_64: avx2 fma)` at commit `abc1234`." in text


def test_a_set_mixing_two_configurations_is_refused_naming_the_key(tmp_path):
    _run(tmp_path, 0, [0.2, 0.4])
    _run(tmp_path, 1, [0.2, 0.4], identity={"prompts_per_step": 32})
    with pytest.raises(protocol_noise.ProtocolError, match="differ in prompts_per_step: 32 vs 16"):
        protocol_noise.load_protocol(tmp_path)


def test_a_window_longer_than_the_runs_evaluations_is_refused(tmp_path):
    _run(tmp_path, 0, [0.2, 0.4])
    _run(tmp_path, 1, [0.2, 0.5])
    runs = protocol_noise.load_protocol(tmp_path)
    with pytest.raises(protocol_noise.ProtocolError, match="fewer than the window of 3"):
        protocol_noise.report({"x": runs}, [3], "cmd")


def test_paired_difference_removes_what_a_seed_does_to_both_rows(tmp_path):
    # the row is the baseline + 2 points + a small per-seed wobble; the baseline's seeds spread
    # by 10 points, so the paired std (of +2.5, +1.5, +2.0) is 0.5 against ~14 unpaired
    base, row = tmp_path / "base", tmp_path / "row"
    for seed, (b, d) in enumerate([(0.40, 0.025), (0.50, 0.015), (0.60, 0.020)]):
        _run(base, seed, [0.2, b])
        _run(row, seed, [0.2, b + d], identity={"algorithm.name": "asym_grpo"})
    protocols = {"GRPO": protocol_noise.load_protocol(base),
                 "AsymGRPO": protocol_noise.load_protocol(row)}
    text = protocol_noise.report(protocols, [1], "cmd", [("AsymGRPO", "GRPO")])
    half = 4.302653 * 0.5 / math.sqrt(3)  # t_{0.975, 2} x sd / sqrt(n)
    assert (f"| 1 | 3 | +2.00 [{2 - half:+.2f}, {2 + half:+.2f}] | 0.50 | "
            in text)
    unpaired = math.sqrt(0.01 + ((42.5 - 52) ** 2 + (51.5 - 52) ** 2 + (62 - 52) ** 2) / 2 / 1e4)
    assert f"| 0.50 | {100 * unpaired:.2f} | 3 |" in text


@pytest.mark.parametrize("text", ["0", "-2"])
def test_a_window_under_one_evaluation_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="a window is >= 1 evaluation"):
        protocol_noise.window_size(text)
