"""Registries of named algorithm functions with declared, validated parameters.

A registry is a ``dict[str, Spec]``. Each ``Spec`` declares the config-level parameter names its
function takes (``params``), their defaults, and a validator, so adding an algorithm is one
function plus one ``@register(...)`` line:

    @register(ADVANTAGE_ESTIMATORS, "my_adv", {"tau": 1.0}, lambda p: check_number(p, "tau", low=0))
    def my_adv(r: Tensor, tau: float) -> Tensor: ...

``resolve`` fills the defaults, rejects unknown names and checks the values; every error is a
ValueError that names the parameter and the value. Parameter names form one flat namespace across
registries (``algorithm.<name>`` in config): a name means the same thing to every part that
declares it, and each part receives only the names it declares (``own``).

A part may carry a ``Schedule``: parameters that change from step to step, driven by a small
state that the trainer saves in checkpoints (Positive-Advantage Reweighting's lambda, the
entropy-adaptive betas of ``asym_adaptive``). ``min_group_size`` declares how many rollouts per
prompt (G) an estimator needs to say anything: 2 for group-relative estimators (with G = 1 every
advantage is 0), 1 for those that read each reward alone.

A part also declares what it reads of the step batch (``reads``, names of ``rlvr.batch.StepBatch``
fields), so the trainer and the learner compute only what the configured parts need: an advantage
estimator reads ``correct`` (binary) or ``rewards`` (shaped); a policy loss that reads
``selected`` brings its token selector (``select``), run once per mini-batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

Checker = Callable[[Mapping[str, Any]], None]
ScheduleState = dict[str, float]


@dataclass(frozen=True)
class Schedule:
    """Step-dependent parameters of a registered part (pure functions of a small state).

    ``initial(params)`` is the state before step 0; ``current(state, params, progress)`` the
    parameter values of a step at ``progress`` = step / (total_steps - 1) in [0, 1];
    ``advance(state, params, step_entropy)`` the state after a step whose token-mean entropy was
    ``step_entropy``. ``params`` are the part's resolved parameters. ``metrics`` maps each
    parameter the schedule sets to the metric key it is logged under every step.
    """

    initial: Callable[[Mapping[str, Any]], ScheduleState]
    current: Callable[[ScheduleState, Mapping[str, Any], float], dict[str, float]]
    advance: Callable[[ScheduleState, Mapping[str, Any], float], ScheduleState]
    metrics: Mapping[str, str]


def _accept_all(params: Mapping[str, Any]) -> None:
    """The validator of a function without constraints on its parameters."""


@dataclass(frozen=True)
class Spec:
    """A registered function: its parameters (config-level names) with their defaults, and the
    smallest group size G it is meaningful for."""

    fn: Callable[..., Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    check: Checker = _accept_all
    schedule: Schedule | None = None
    reads: frozenset[str] = frozenset()
    select: Callable[..., Any] | None = None
    min_group_size: int = 1

    @property
    def params(self) -> tuple[str, ...]:
        """The parameter names this function declares, in declaration order."""
        return tuple(self.defaults)


class Registry(dict[str, Spec]):
    """Named ``Spec``s of one kind (``kind`` appears in error messages)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def lookup(self, name: str) -> Spec:
        """The entry ``name``; ValueError listing the known names if there is none."""
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {sorted(self)}")
        return self[name]

    def own(self, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The entries of the flat ``params`` that ``name`` declares."""
        declared = self.lookup(name).params
        return {k: v for k, v in params.items() if k in declared}

    def resolve(self, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The defaults of ``name`` overlaid with ``params``, validated.

        Raises:
            ValueError: for an unknown name, a parameter ``name`` does not declare, or an
                invalid value (the message names the parameter and the value).
        """
        spec = self.lookup(name)
        unknown = sorted(set(params) - set(spec.params))
        if unknown:
            raise ValueError(f"{self.kind} {name!r} takes parameters {list(spec.params)}; "
                             f"unknown: {unknown}")
        resolved = {**spec.defaults, **params}
        spec.check(resolved)
        return resolved


def register(registry: Registry, name: str, defaults: Mapping[str, Any] | None = None,
             check: Checker = _accept_all, *, schedule: Schedule | None = None,
             reads: tuple[str, ...] = (), select: Callable[..., Any] | None = None,
             min_group_size: int = 1) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: add the function to ``registry`` under ``name`` with parameter ``defaults``
    (and optionally a ``Schedule`` of some of them); ``reads``: the step-batch fields it reads;
    ``select``: a policy loss's token selector; ``min_group_size``: the fewest rollouts per
    prompt it needs."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in registry:
            raise ValueError(f"{registry.kind} {name!r} is already registered")
        registry[name] = Spec(fn, dict(defaults or {}), check, schedule, frozenset(reads),
                              select, min_group_size)
        return fn

    return decorate


def check_number(params: Mapping[str, Any], key: str, *, low: float | None = None,
                 high: float | None = None) -> None:
    """Require ``params[key]`` to be a finite real number in [low, high] (a missing bound is
    open); the ValueError reads e.g. ``beta_pos must be >= 0, got -0.1``."""
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    if low is not None and high is not None:
        if not low <= value <= high:
            raise ValueError(f"{key} must be in [{low:g}, {high:g}], got {value!r}")
    elif low is not None and value < low:
        raise ValueError(f"{key} must be >= {low:g}, got {value!r}")
    elif high is not None and value > high:
        raise ValueError(f"{key} must be <= {high:g}, got {value!r}")


def check_choice(params: Mapping[str, Any], key: str, choices: tuple[Any, ...]) -> None:
    """Require ``params[key]`` to be one of ``choices``."""
    value = params[key]
    if isinstance(value, bool) or value not in choices:
        raise ValueError(f"{key} must be one of {list(choices)}, got {value!r}")
