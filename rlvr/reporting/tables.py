"""The papers' tables: which runs make each row, and how a row's number is chosen.

A row is one training configuration (an algorithm, sometimes with extra overrides) run for each
seed in ``runs/<experiment_name>/<row id>/seed<seed>``: the directory ``python -m rlvr.train
experiment=<experiment> algorithm=<row id>`` uses, so runs started by hand or by a sweep count.
The ``base`` row evaluates the starting policy (``total_steps=0``).

Profiles: ``paper`` uses the experiment preset (hub models, GPUs); ``tiny`` runs the same rows
on the embedded tiny model and arithmetic task on CPU; ``tiny_lownoise`` is ``tiny`` with the
lower-noise evaluation (``conf/eval/arith_lownoise.yaml``: every held-out problem, every 5 steps,
the reported number averaged over the last three evaluations); ``demo`` is ``tiny`` cut to one
seed and a few steps (``make demo``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Row:
    """``id`` names the run directory; ``algorithm`` is the config option (None: base model)."""

    id: str
    label: str
    algorithm: str | None
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    """How to run a table: config overrides, seeds, and the experiment name of its runs."""

    name: str
    overrides: tuple[str, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class Table:
    """A paper table. ``title`` names the table; what its runs were (model, data, evaluation)
    is described from their configurations (``rlvr.reporting.setting``). ``select`` picks the
    reported checkpoint per run: ``final`` or ``best:<metric>`` (the paper's checkpoint
    selection, e.g. best MATH-500)."""

    name: str
    title: str
    experiment: str
    rows: tuple[Row, ...]
    reference: str | None
    select: dict[str, str] = field(default_factory=lambda: {"paper": "final"})
    tiny_overrides: tuple[str, ...] = ()

    def profile(self, name: str) -> Profile:
        if name == "paper":
            return Profile("paper", (f"experiment={self.experiment}",), (0,))
        if name == "tiny":
            return Profile("tiny", (f"experiment_name={self.name}_tiny", *TINY,
                                    *self.tiny_overrides), (0, 1, 2))
        if name == "tiny_lownoise":
            return Profile("tiny_lownoise", (f"experiment_name={self.name}_tiny_lownoise",
                                             *TINY_LOWNOISE, *self.tiny_overrides), (0, 1, 2))
        if name == "demo":
            return Profile("demo", (f"experiment_name={self.name}_demo", *DEMO,
                                    *self.tiny_overrides), (0,))
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")

    def experiment_name(self, profile: str) -> str:
        """The experiment name the profile's runs are filed under."""
        for override in self.profile(profile).overrides:
            if override.startswith("experiment_name="):
                return override.split("=", 1)[1]
        return self.experiment

    def run_dir(self, runs: Path, profile: str, row: Row, seed: int) -> Path:
        return runs / self.experiment_name(profile) / row.id / f"seed{seed}"

    def selection(self, profile: str) -> str:
        if profile == "tiny_lownoise":
            return LOWNOISE_SELECTION
        return self.select.get(profile, "final")


TINY = ("total_steps=50", "eval.every_n_steps=10", "checkpoint_every=25",
        "eval.benchmarks.0.limit=100", "eval.benchmarks.1.limit=100",
        "eval.benchmarks.2.limit=100")
# The lower-noise tiny protocol (results/noise_tiny.md): all 200 held-out problems per level,
# evaluated every 5 steps, the reported number averaged over the last three evaluations.
TINY_LOWNOISE = ("total_steps=50", "eval=arith_lownoise", "checkpoint_every=25")
LOWNOISE_SELECTION = "window:3"
PROFILES = ("paper", "tiny", "tiny_lownoise", "demo")
DEMO = ("total_steps=12", "eval.every_n_steps=0", "checkpoint_every=0",
        "eval.benchmarks.0.limit=50", "eval.benchmarks.1.limit=50",
        "eval.benchmarks.2.limit=50")

TINY_LORA = ("learner=lora", "learner.lr=2e-3", "learner.micro_batch_size=128")

BASE = Row("base", "Base model", None)

TABLES: dict[str, Table] = {t.name: t for t in (
    Table("table2", "AsymGRPO Table 2",
          "table2_qwen3_4b", (
              BASE,
              Row("reinforce", "REINFORCE", "reinforce"),
              Row("grpo", "GRPO", "grpo"),
              Row("entropy_reg", "GRPO + entropy reg.", "entropy_reg"),
              Row("clip_higher", "GRPO + clip-higher", "clip_higher"),
              Row("dr_grpo", "Dr.GRPO", "dr_grpo"),
              Row("pos_only", "Pos-Only", "pos_only"),
              Row("neg_only", "Neg-Only", "neg_only"),
              Row("asym_sym", "AsymGRPO symmetric", "asym_sym"),
              Row("asym_grpo", "AsymGRPO", "asym_grpo"),
          ), "results/reference/table2_qwen3_4b.csv",
          {"paper": "best:eval/math500/avg@5", "tiny": "final", "demo": "final"},
          tiny_overrides=("learner.mini_batches=2",)),  # the paper's 128 prompts, mini-batch 64
    Table("backbones", "AsymGRPO Table 2, other backbones: GRPO vs AsymGRPO",
          "table2_backbones", (
              Row("grpo_math_1.5b", "Qwen2.5-Math-1.5B GRPO", "grpo",
                  ("model=qwen2.5_math_1.5b",)),
              Row("asym_grpo_math_1.5b", "Qwen2.5-Math-1.5B AsymGRPO", "asym_grpo",
                  ("model=qwen2.5_math_1.5b",)),
              Row("grpo_7b", "Qwen2.5-7B GRPO", "grpo", ("model=qwen2.5_7b",)),
              Row("asym_grpo_7b", "Qwen2.5-7B AsymGRPO", "asym_grpo", ("model=qwen2.5_7b",)),
          ), None, {"paper": "best:eval/math500/avg@5"}),
    Table("entropy_dynamics", "AsymGRPO section 3: channel modulation and entropy",
          "entropy_dynamics", (
              Row("reinforce", "REINFORCE", "reinforce"),
              Row("pos_only", "Pos-Only (beta+ 0.5)", "pos_only"),
              Row("pos_only_0.25", "Pos-Only (beta+ 0.25)", "pos_only",
                  ("algorithm.beta_pos=0.25",)),
              Row("neg_only", "Neg-Only (beta- 0.5)", "neg_only"),
              Row("neg_only_0.75", "Neg-Only (beta- 0.75)", "neg_only",
                  ("algorithm.beta_neg=0.75",)),
              Row("entropy_reg", "GRPO + entropy reg.", "entropy_reg"),
          ), None),
    Table("flip_test", "AsymGRPO section 3.2: advantage flips", "flip_test", (
        Row("grpo", "GRPO", "grpo"),
        Row("ent_decrease", "EntDecrease (flipped positive channel)", "ent_decrease"),
        Row("ent_increase", "EntIncrease (flipped negative channel)", "ent_increase"),
    ), None),
    Table("sa_ah_3b", "SA-AH-GRPO, 3B table", "sa_ah_gsm8k_3b", (
        BASE,
        Row("grpo", "GRPO (alpha 0)", "grpo"),
        Row("ah_grpo", "AH-GRPO (alpha 0.5)", "ah_grpo"),
        Row("sa_ah_grpo", "SA-AH-GRPO (alpha 0.5)", "sa_ah_grpo"),
    ), "results/reference/sa_ah_gsm8k_3b.csv", tiny_overrides=TINY_LORA),
    Table("sa_ah_1.5b", "SA-AH-GRPO, 1.5B table",
          "sa_ah_gsm8k_1.5b", (
              BASE,
              Row("grpo", "GRPO (alpha 0)", "grpo"),
              Row("ah_grpo", "AH-GRPO (alpha 0.5)", "ah_grpo"),
              Row("sa_ah_grpo", "SA-AH-GRPO (alpha 0.5)", "sa_ah_grpo"),
          ), "results/reference/sa_ah_gsm8k_1.5b.csv", tiny_overrides=TINY_LORA),
    Table("peers", "Peer baselines and extensions next to GRPO and AsymGRPO (METHODS.md 7)",
          "table2_qwen3_4b", (
              Row("grpo", "GRPO", "grpo"),
              Row("asym_grpo", "AsymGRPO", "asym_grpo"),
              Row("rloo", "RLOO", "rloo"),
              Row("gspo", "GSPO (clip 3e-4 / 4e-4)", "gspo"),
              Row("clip_cov", "Clip-Cov", "clip_cov"),
              Row("kl_cov", "KL-Cov", "kl_cov"),
              Row("dapo", "DAPO", "dapo"),
              Row("asym_adaptive", "AsymGRPO, entropy-adaptive betas", "asym_adaptive"),
          ), None,
          {"paper": "best:eval/math500/avg@5", "tiny": "final", "demo": "final"},
          tiny_overrides=("learner.mini_batches=2",)),
    Table("pos_reweight", "Positive-Advantage Reweighting: lambda schedules vs GRPO",
          "pos_reweight", (
              Row("grpo", "GRPO", "grpo"),
              Row("pos_reweight_stage", "Pos-Adv-Reweight (stage)", "pos_reweight_stage"),
              Row("pos_reweight_linear", "Pos-Adv-Reweight (epoch-wise)", "pos_reweight_linear"),
              Row("pos_reweight", "Pos-Adv-Reweight (entropy-guided)", "pos_reweight"),
          ), "results/reference/pos_reweight.csv"),
)}
