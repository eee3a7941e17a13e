"""Bad configuration fails before any model loads, with a message naming the key."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError

from rlvr.checks import register_schema, validate
from rlvr.config import ConfigError

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


@pytest.mark.parametrize("algorithm,needed", [
    ("grpo", 2), ("dr_grpo", 2), ("asym_grpo", 2), ("ent_decrease", 3), ("ent_increase", 3)])
def test_group_relative_estimators_need_several_rollouts(algorithm, needed):
    with pytest.raises(ConfigError, match=rf"rollout.n={needed - 1}: .* needs rollout.n >= "
                                          rf"{needed}"):
        validate(_compose(f"algorithm={algorithm}", f"rollout.n={needed - 1}"))
    assert validate(_compose(f"algorithm={algorithm}", f"rollout.n={needed}")).rollout.n == needed


def test_reinforce_reads_each_reward_alone_and_accepts_one_rollout():
    assert validate(_compose("algorithm=reinforce", "rollout.n=1")).rollout.n == 1


def test_resume_accepts_a_checkpoint_and_rejects_other_paths(tmp_path):
    checkpoint = tmp_path / "checkpoints" / "step_000004"
    checkpoint.mkdir(parents=True)
    with pytest.raises(ConfigError, match="resume must be a checkpoint directory"):
        validate(_compose(f"resume={checkpoint}"))
    (checkpoint / "state.json").write_text("{}")
    with pytest.raises(ConfigError, match="resume must be a checkpoint directory"):
        validate(_compose(f"resume={checkpoint}"))  # digests.json is written last
    (checkpoint / "digests.json").write_text("{}")
    assert validate(_compose(f"resume={checkpoint}")).resume == str(checkpoint)
    with pytest.raises(ConfigError, match=f"resume={tmp_path}/nope: no such directory"):
        validate(_compose(f"resume={tmp_path}/nope"))


@pytest.mark.parametrize("overrides,message", [
    (["data.dir=/data"], "data.dir=/data is not read by data=arith"),
    (["eval.dir=/data"], r"eval.dir=/data is not read by the eval benchmarks \['arith_l1'"),
])
def test_directories_no_dataset_reads_are_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(_compose(*overrides))


def test_composed_token_weights_take_both_parameter_sets():
    run = validate(_compose("algorithm=sa_ah_grpo", "algorithm.token_weights=[sa_ah,pos_reweight]",
                            "algorithm.schedule=entropy_guided", "algorithm.lambda_step=0.1"))
    assert run.algorithm.parameters() == {"alpha": 0.5, "schedule": "entropy_guided",
                                          "lambda_step": 0.1}


@pytest.mark.parametrize("overrides,message", [
    (["algorithm=grpo", "algorithm.kl_cov_coef=2"], "algorithm.kl_cov_coef=2.0 is not used"),
    (["algorithm=clip_cov", "algorithm.kl_cov_coef=2"], "algorithm.kl_cov_coef=2.0 is not used"),
    (["algorithm=asym_adaptive", "algorithm.beta_max=0.5"], r"beta_pos must be in \[0, 0\.5\]"),
    (["algorithm=clip_cov", "algorithm.cov_low=6"], "cov_low must be <= cov_high"),
    (["algorithm.policy_loss=ppo"], "algorithm.policy_loss must be one of"),
    (["algorithm=dapo", "algorithm.overlong_fraction=1"], r"overlong_fraction must be in \[0, 1\)"),
    (["algorithm=dapo", "algorithm.max_filter_rounds=0"], "max_filter_rounds must be >= 1"),
])
def test_peer_parameters_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(_compose(*overrides))


def test_directories_a_dataset_reads_are_accepted():
    run = validate(_compose("data=math", "data.dir=/data"))
    assert (run.data.dir, run.eval.dir) == ("/data", "/data")  # eval=arith inherits it unread
    assert validate(_compose("eval=math5", "eval.dir=/evals")).eval.dir == "/evals"


def test_dead_keys_are_gone():
    for key in ("rollout.seed=1", "logger.console_every=1"):
        with pytest.raises((ConfigCompositionException, ConfigKeyError)):
            _compose(key)


def test_a_misspelt_algorithm_parameter_is_not_a_field():
    with pytest.raises((ConfigCompositionException, ConfigKeyError), match="beta_poss"):
        _compose("algorithm=asym_grpo", "algorithm.beta_poss=0.3")


def test_a_part_registered_after_config_is_imported_is_a_field_of_the_schema():
    """The schema's algorithm fields come from the registries when an entry point registers
    it, not when rlvr.config is imported: a part added later takes its parameter from config."""
    import torch

    from rlvr.algorithms.registry import register
    from rlvr.algorithms.weights import TOKEN_WEIGHTS, compute_combined_token_weights

    register(TOKEN_WEIGHTS, "test_scale", {"kappa2": 1.0})(
        lambda advantages, entropy, mask, vocab_size, kappa2: torch.full(mask.shape, kappa2))
    try:
        run = validate(_compose("algorithm.token_weights=[test_scale]", "algorithm.kappa2=0.25"))
        mask = torch.ones(2, 3)
        weights = compute_combined_token_weights(run.algorithm.token_weights, torch.ones(2),
                                                 mask, mask, 8, run.algorithm.parameters())
        assert torch.equal(weights, torch.full((2, 3), 0.25))
    finally:
        del TOKEN_WEIGHTS["test_scale"]
        register_schema()
