"""Bad configuration fails before any model loads, with a message naming the key."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError

from rlvr.config import ConfigError, register_schema, validate

CONF = str(Path(__file__).resolve().parents[1] / "conf")
ALGORITHMS = sorted(p.stem for p in (Path(CONF) / "algorithm").glob("*.yaml"))


def _compose(*overrides: str):
    register_schema()
    with initialize_config_dir(CONF, version_base="1.3"):
        return compose("config", overrides=["output_dir=/tmp/rlvr-test-config", *overrides])


def test_defaults_validate():
    run = validate(_compose())
    assert (run.model.path, run.algorithm.name, run.rollout.engine) == ("tiny", "grpo", "vllm")


@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_algorithm_config_validates(name):
    assert validate(_compose(f"algorithm={name}")).algorithm.name == name


def test_unknown_group_option_lists_the_choices():
    with pytest.raises(ConfigCompositionException, match="algorithm"):
        _compose("algorithm=grpo_typo")


def test_misspelt_key_is_rejected_at_composition():
    with pytest.raises((ConfigCompositionException, ConfigKeyError), match="lrate"):
        _compose("learner.lrate=1e-5")


@pytest.mark.parametrize("override,message", [
    ("learner.lr=-1e-5", "learner.lr must be > 0"),
    ("rollout.n=0", "rollout.n must be >= 1"),
    ("rollout.top_p=1.5", r"rollout.top_p must be in \(0, 1\]"),
    ("algorithm.loss.eps_low=1.5", r"algorithm.loss.eps_low must be in \[0, 1\)"),
    ("algorithm.loss.agg=sum", "algorithm.loss.agg must be one of"),
    ("learner.mini_batches=3", "learner.mini_batches must divide"),
    ("model.dtype=int8", "model.dtype must be one of"),
    ("eval.benchmarks.0.temperature=0", r"eval.benchmarks\[0\].k must be 1 with greedy"),
])
def test_out_of_range_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        validate(_compose(override))


@pytest.mark.parametrize("overrides,message", [
    (["algorithm=asym_grpo", "algorithm.beta_pos=-0.1"], "beta_pos must be >= 0"),
    (["algorithm=sa_ah_grpo", "algorithm.alpha=-1"], "alpha must be >= 0"),
    (["algorithm=pos_reweight", "algorithm.lambda_value=2"], r"lambda_value must be in \[0, 1\]"),
    (["algorithm.advantage=nope"], "algorithm.advantage must be one of"),
    (["algorithm=grpo", "algorithm.beta_pos=0.3"], "algorithm.beta_pos=0.3 is not used"),
])
def test_invalid_algorithm_parameters_fail_before_training(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(_compose(*overrides))


def test_wrong_type_names_the_key():
    with pytest.raises((ConfigCompositionException, ConfigError), match="total_steps"):
        validate(_compose("total_steps=many"))
