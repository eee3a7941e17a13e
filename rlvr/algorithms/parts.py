"""An algorithm's parts, their flat parameters, what they read, and their schedules.

An algorithm is an advantage estimator, a list of token weights, a policy loss, optionally a
group filter and a list of reward shapings, each a named entry of its registry
(``PART_REGISTRIES``, keyed like the ``algorithm.*`` fields that name them). Their parameters
share one flat namespace (``algorithm.<name>`` in config): ``declared_parameters`` is the single
list of them, which the entry points hand to ``rlvr.config.register_schema`` (via
``rlvr.checks.register_schema``) to build the typed fields. ``step_inputs`` says which
step-batch fields the configured parts read, so the learner runs only the passes they need. A
part with a ``Schedule`` (registry.py) has parameters that change from step to step;
``ScheduleSet`` carries the state of every scheduled part of a run (saved in checkpoints as one
dict) and hands each step its current values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlvr.algorithms.advantages import ADVANTAGE_ESTIMATORS
from rlvr.algorithms.group_filters import GROUP_FILTERS
from rlvr.algorithms.losses import POLICY_LOSSES
from rlvr.algorithms.registry import Registry, ScheduleState
from rlvr.algorithms.reward_shapings import REWARD_SHAPINGS
from rlvr.algorithms.weights import TOKEN_WEIGHTS
from rlvr.config import AlgorithmConfig

PART_REGISTRIES: dict[str, Registry] = {"advantage": ADVANTAGE_ESTIMATORS,
                                        "token_weights": TOKEN_WEIGHTS,
                                        "policy_loss": POLICY_LOSSES,
                                        "group_filter": GROUP_FILTERS,
                                        "reward_shaping": REWARD_SHAPINGS}


def algorithm_parts(algorithm: AlgorithmConfig) -> list[tuple[Registry, str]]:
    """(registry, name) of every part ``algorithm`` uses, in ``part_names`` order."""
    return [(PART_REGISTRIES[kind], name) for kind, name in algorithm.part_names()]


def step_inputs(algorithm: AlgorithmConfig) -> frozenset[str]:
    """The step-batch fields (rlvr/batch.py) the configured parts read: each part's declared
    ``reads``, and ``ref_logprobs`` for the KL penalty of ``algorithm.loss.kl_coef`` (the loss's
    one optional term with an input of its own). The learner computes a pass only for these."""
    reads = {field for registry, name in algorithm_parts(algorithm)
             for field in registry.lookup(name).reads}
    if algorithm.loss.kl_coef > 0:
        reads.add("ref_logprobs")
    return frozenset(reads)


def declared_parameters() -> dict[str, type]:
    """Every parameter any registered part declares -> its type (that of its defaults), sorted.

    Raises:
        TypeError: two parts declare one name with defaults of different types.
    """
    types: dict[str, type] = {}
    for registry in PART_REGISTRIES.values():
        for spec in registry.values():
            for name, default in spec.defaults.items():
                kind = type(default)
                if types.setdefault(name, kind) is not kind:
                    raise TypeError(f"parameter {name!r} is declared as {types[name].__name__} "
                                    f"and {kind.__name__} by different parts")
    return dict(sorted(types.items()))


class ScheduleSet:
    """The scheduled parts of one run and their states.

    ``parts``: (registry, part name, the part's configured parameters) for each part in use;
    parts without a ``Schedule`` are ignored. ``now(progress)`` gives the flat parameter values of
    the current step, ``advance(step_entropy)`` moves every state on after a step.
    """

    def __init__(self, parts: Sequence[tuple[Registry, str, Mapping[str, Any]]]) -> None:
        self._parts = []
        owners: dict[str, str] = {}
        for registry, name, params in parts:
            spec = registry.lookup(name)
            if spec.schedule is None:
                continue
            for key in spec.schedule.metrics:
                if owners.setdefault(key, name) != name:
                    raise ValueError(f"parameter {key!r} is scheduled by both {owners[key]!r} "
                                     f"and {name!r}")
            resolved = registry.resolve(name, registry.own(name, params))
            self._parts.append((name, spec.schedule, resolved))
        self.states: dict[str, ScheduleState] = {
            name: schedule.initial(resolved) for name, schedule, resolved in self._parts}

    def now(self, progress: float) -> dict[str, float]:
        """The scheduled parameters' values at ``progress`` = step / (total_steps - 1)."""
        values: dict[str, float] = {}
        for name, schedule, resolved in self._parts:
            values.update(schedule.current(self.states[name], resolved, progress))
        return values

    def metrics(self, values: Mapping[str, float]) -> dict[str, float]:
        """The metric of each scheduled parameter in ``values`` (``now``'s output)."""
        return {schedule.metrics[key]: float(values[key])
                for _, schedule, _ in self._parts for key in schedule.metrics}

    def advance(self, step_entropy: float) -> None:
        """Move every state on after a step whose token-mean entropy was ``step_entropy``."""
        self.states = {name: schedule.advance(self.states[name], resolved, step_entropy)
                       for name, schedule, resolved in self._parts}

    def state_dict(self) -> dict[str, ScheduleState]:
        """The states, JSON-ready, for a checkpoint."""
        return {name: dict(state) for name, state in self.states.items()}

    def load_state_dict(self, states: Mapping[str, Mapping[str, float]]) -> None:
        """Restore ``state_dict``'s output; the scheduled parts must be the same.

        Raises:
            ValueError: the checkpoint's scheduled parts differ from this run's.
        """
        if set(states) != set(self.states):
            raise ValueError(f"checkpoint schedules {sorted(states)} do not match this run's "
                             f"{sorted(self.states)}")
        self.states = {name: {k: float(v) for k, v in state.items()}
                       for name, state in states.items()}
