"""Typed configuration of an rlvr run.

Hydra composes YAML from ``conf/`` on top of these dataclasses (registered in Hydra's ConfigStore
as ``schema``), so a misspelt key fails at composition time. ``validate`` then turns the composed
DictConfig into these objects and checks every value range before any model is loaded; every error
names the offending key (``algorithm.beta_pos must be >= 0, got -0.1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""


def _require(ok: bool, key: str, message: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} {message}, got {value!r}")


def _one_of(value: str, allowed: tuple[str, ...], key: str) -> None:
    _require(value in allowed, key, f"must be one of {list(allowed)}", value)


@dataclass
class TinyModelConfig:
    """Build recipe of an embedded tiny model (rlvr/tiny.py); the cache key hashes it.

    ``architecture`` (``qwen2`` or ``qwen3``) and ``tie_word_embeddings`` choose the stand-in for a
    paper's model (``model=tiny_qwen3``, ``model=tiny_tied``); at their defaults they are left out
    of the hash, so the default model keeps its cache key.
    """

    seed: int = 0
    vocab_size: int = 512
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 384
    max_position_embeddings: int = 256
    sft_steps: int = 450
    sft_batch_size: int = 64
    sft_lr: float = 3e-3
    sft_label_smoothing: float = 0.07
    architecture: str = "qwen2"
    tie_word_embeddings: bool = False

    def validate(self) -> None:
        _one_of(self.architecture, ("qwen2", "qwen3"), "model.tiny.architecture")


@dataclass
class ModelConfig:
    """Which policy to train. ``path`` is a hub id, a local directory, or ``tiny``."""

    path: str = "tiny"
    family: str = "tiny"
    dtype: str = "float32"
    revision: str | None = None
    trust_remote_code: bool = False
    cache_dir: str = "${oc.env:RLVR_CACHE,'~/.cache/rlvr'}"
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)

    def validate(self) -> None:
        _one_of(self.dtype, ("float32", "bfloat16", "float16"), "model.dtype")
        _one_of(
            self.family,
            ("tiny", "qwen2.5-instruct", "qwen2.5-math", "qwen3", "base"),
            "model.family",
        )
        self.tiny.validate()


@dataclass
class LossConfig:
    """PPO-clip policy loss (METHODS.md section 3)."""

    eps_low: float = 0.2
    eps_high: float = 0.2
    dual_clip: float | None = None
    agg: str = "token_mean"
    ent_coef: float = 0.0
    kl_coef: float = 0.0
    log_ratio_clamp: float = 20.0

    def validate(self) -> None:
        _require(0 <= self.eps_low < 1, "algorithm.loss.eps_low", "must be in [0, 1)", self.eps_low)
        _require(self.eps_high >= 0, "algorithm.loss.eps_high", "must be >= 0", self.eps_high)
        if self.dual_clip is not None:
            _require(self.dual_clip > 1, "algorithm.loss.dual_clip", "must be > 1", self.dual_clip)
        _one_of(
            self.agg,
            ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"),
            "algorithm.loss.agg",
        )
        _require(self.kl_coef >= 0, "algorithm.loss.kl_coef", "must be >= 0", self.kl_coef)
        _require(
            self.log_ratio_clamp > 0,
            "algorithm.loss.log_ratio_clamp",
            "must be > 0",
            self.log_ratio_clamp,
        )


@dataclass
class AlgorithmConfig:
    """One paper variant: an advantage estimator, token weights, and the policy loss.

    The estimator and weight parameters sit flat at ``algorithm.*`` so that sweeps read
    ``algorithm.beta_pos=...`` and ``algorithm.alpha=...``. A parameter left ``null`` takes the
    registry default; a parameter set to a value that the chosen estimator and weights do not use
    is an error (it would be silently ignored otherwise).
    """

    name: str = "grpo"
    advantage: str = "grpo"
    token_weights: list[str] = field(default_factory=list)
    # advantage parameters (rlvr/algorithms/advantages.py)
    std_ddof: int | None = None
    eps: float | None = None
    beta_pos: float | None = None
    beta_neg: float | None = None
    # token-weight parameters (rlvr/algorithms/weights.py)
    alpha: float | None = None
    normalize: str | None = None
    schedule: str | None = None
    lambda_value: float | None = None
    entropy_threshold: float | None = None
    lambda_step: float | None = None
    lambda_init: float | None = None
    loss: LossConfig = field(default_factory=LossConfig)

    def advantage_params(self) -> dict[str, Any]:
        """The parameters set in config for the advantage estimator, by name."""
        from rlvr.algorithms.advantages import ADVANTAGE_ESTIMATORS

        return {k: getattr(self, k) for k in ADVANTAGE_ESTIMATORS[self.advantage].params
                if getattr(self, k) is not None}

    def weight_params(self) -> dict[str, Any]:
        """The parameters set in config for the token weights, by name (union over weights)."""
        from rlvr.algorithms.weights import TOKEN_WEIGHTS

        names = {p for w in self.token_weights for p in TOKEN_WEIGHTS[w].params}
        return {k: getattr(self, k) for k in sorted(names) if getattr(self, k) is not None}

    def validate(self) -> None:
        from rlvr.algorithms.advantages import ADVANTAGE_ESTIMATORS, validate_advantage_params
        from rlvr.algorithms.weights import TOKEN_WEIGHTS, validate_weight_params

        _one_of(self.advantage, tuple(ADVANTAGE_ESTIMATORS), "algorithm.advantage")
        for w in self.token_weights:
            _one_of(w, tuple(TOKEN_WEIGHTS), "algorithm.token_weights")
        used = set(ADVANTAGE_ESTIMATORS[self.advantage].params)
        used |= {p for w in self.token_weights for p in TOKEN_WEIGHTS[w].params}
        for key in _ALGORITHM_PARAMS:
            if getattr(self, key) is not None and key not in used:
                raise ConfigError(
                    f"algorithm.{key}={getattr(self, key)!r} is not used by advantage "
                    f"'{self.advantage}' with token_weights {self.token_weights}; "
                    f"remove it or choose an algorithm that uses it"
                )
        try:
            validate_advantage_params(self.advantage, self.advantage_params())
            for w in self.token_weights:
                validate_weight_params(w, {k: v for k, v in self.weight_params().items()
                                           if k in TOKEN_WEIGHTS[w].params})
        except ValueError as err:
            raise ConfigError(f"algorithm: {err}") from err
        self.loss.validate()


_ALGORITHM_PARAMS = (
    "std_ddof", "eps", "beta_pos", "beta_neg", "alpha", "normalize", "schedule",
    "lambda_value", "entropy_threshold", "lambda_step", "lambda_init",
)


@dataclass
class ArithConfig:
    """The synthetic verifiable task (rlvr/data/arith.py)."""

    seed: int = 1234
    levels: list[int] = field(default_factory=lambda: [1, 2, 3])
    num_train: int = 20000
    num_eval: int = 200


@dataclass
class DataConfig:
    """The training prompts: the synthetic ``arith`` task or a registered benchmark."""

    name: str = "arith"
    split: str = "train"
    dir: str | None = None
    limit: int | None = None
    shuffle_seed: int = 0
    arith: ArithConfig = field(default_factory=ArithConfig)

    def validate(self) -> None:
        if self.limit is not None:
            _require(self.limit > 0, "data.limit", "must be > 0", self.limit)


@dataclass
class BenchmarkEvalConfig:
    """One evaluation benchmark: ``k`` samples per problem at ``temperature`` (0 = greedy)."""

    name: str = "arith_l1"
    split: str = "test"
    k: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int | None = None
    limit: int | None = None


@dataclass
class EvalConfig:
    """What to evaluate during training and in ``python -m rlvr.evaluate``.

    ``pass_k``: pass@j is reported for each j here on every benchmark with ``k >= j`` samples.
    """

    name: str = "arith"
    dir: str | None = "${data.dir}"
    benchmarks: list[BenchmarkEvalConfig] = field(default_factory=list)
    every_n_steps: int = 0
    at_start: bool = True
    at_end: bool = True
    pass_k: list[int] = field(default_factory=lambda: [1])

    def validate(self) -> None:
        _require(self.every_n_steps >= 0, "eval.every_n_steps", "must be >= 0", self.every_n_steps)
        _require(all(k >= 1 for k in self.pass_k), "eval.pass_k", "must be >= 1", self.pass_k)
        for i, b in enumerate(self.benchmarks):
            _require(b.k >= 1, f"eval.benchmarks[{i}].k", "must be >= 1", b.k)
            _require(b.temperature >= 0, f"eval.benchmarks[{i}].temperature", "must be >= 0",
                     b.temperature)
            _require(b.temperature > 0 or b.k == 1, f"eval.benchmarks[{i}].k",
                     "must be 1 with greedy decoding (temperature 0)", b.k)
            _require(0 < b.top_p <= 1, f"eval.benchmarks[{i}].top_p", "must be in (0, 1]", b.top_p)


@dataclass
class RolloutConfig:
    """Sampling of G rollouts per prompt and the engine that does it."""

    engine: str = "vllm"
    n: int = 8
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    max_model_len: int | None = None
    seed: int = 0
    gpu_memory_utilization: float = 0.5
    tensor_parallel_size: int = 1
    sleep_mode: bool = False
    kv_cache_gib: int = 1
    enforce_eager: bool = True
    lora_sync: str = "adapter"
    tis_cap: float | None = None

    def validate(self) -> None:
        _one_of(self.engine, ("vllm", "hf"), "rollout.engine")
        _require(self.n >= 1, "rollout.n", "must be >= 1", self.n)
        _require(self.temperature > 0, "rollout.temperature", "must be > 0", self.temperature)
        _require(0 < self.top_p <= 1, "rollout.top_p", "must be in (0, 1]", self.top_p)
        _require(self.max_new_tokens >= 1, "rollout.max_new_tokens", "must be >= 1",
                 self.max_new_tokens)
        _require(0 < self.gpu_memory_utilization <= 1, "rollout.gpu_memory_utilization",
                 "must be in (0, 1]", self.gpu_memory_utilization)
        _require(self.tensor_parallel_size >= 1, "rollout.tensor_parallel_size", "must be >= 1",
                 self.tensor_parallel_size)
        _one_of(self.lora_sync, ("adapter", "merged"), "rollout.lora_sync")
        if self.tis_cap is not None:
            _require(self.tis_cap >= 1, "rollout.tis_cap", "must be >= 1", self.tis_cap)


@dataclass
class LoraConfig:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                 "gate_proj", "up_proj", "down_proj"]
    )

    def validate(self) -> None:
        _require(self.r >= 1, "learner.lora.r", "must be >= 1", self.r)
        _require(0 <= self.dropout < 1, "learner.lora.dropout", "must be in [0, 1)", self.dropout)


@dataclass
class LearnerConfig:
    """The policy update: optimiser, batching, PPO epochs, memory options."""

    lr: float = 1e-5
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    grad_clip: float = 1.0
    ppo_epochs: int = 1
    mini_batches: int = 1
    micro_batch_size: int = 64
    max_tokens_per_micro_batch: int | None = None
    logprob_chunk: int = 1024
    gradient_checkpointing: bool = False
    strategy: str = "single"
    max_nonfinite_steps: int = 3
    lora: LoraConfig = field(default_factory=LoraConfig)

    def validate(self) -> None:
        _require(self.lr > 0, "learner.lr", "must be > 0", self.lr)
        _require(self.weight_decay >= 0, "learner.weight_decay", "must be >= 0", self.weight_decay)
        _require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "learner.betas",
                 "must be two numbers in [0, 1)", self.betas)
        _require(self.warmup_steps >= 0, "learner.warmup_steps", "must be >= 0", self.warmup_steps)
        _one_of(self.lr_schedule, ("constant", "cosine", "linear"), "learner.lr_schedule")
        _require(self.grad_clip > 0, "learner.grad_clip", "must be > 0", self.grad_clip)
        _require(self.ppo_epochs >= 1, "learner.ppo_epochs", "must be >= 1", self.ppo_epochs)
        _require(self.mini_batches >= 1, "learner.mini_batches", "must be >= 1", self.mini_batches)
        _require(self.micro_batch_size >= 1, "learner.micro_batch_size", "must be >= 1",
                 self.micro_batch_size)
        if self.max_tokens_per_micro_batch is not None:
            _require(self.max_tokens_per_micro_batch >= 1, "learner.max_tokens_per_micro_batch",
                     "must be >= 1", self.max_tokens_per_micro_batch)
        _require(self.logprob_chunk >= 1, "learner.logprob_chunk", "must be >= 1",
                 self.logprob_chunk)
        _one_of(self.strategy, ("single", "fsdp"), "learner.strategy")
        _require(self.max_nonfinite_steps >= 1, "learner.max_nonfinite_steps", "must be >= 1",
                 self.max_nonfinite_steps)
        self.lora.validate()


@dataclass
class LoggerConfig:
    """Where metrics go: always ``metrics.jsonl`` in the run directory, plus W&B."""

    wandb_mode: str = "auto"
    project: str = "rlvr"
    entity: str | None = None
    group: str | None = None
    job_type: str = "train"
    tags: list[str] = field(default_factory=list)
    samples_every: int = 0
    samples_count: int = 8
    console_every: int = 1

    def validate(self) -> None:
        _one_of(self.wandb_mode, ("auto", "online", "offline", "disabled"), "logger.wandb_mode")


@dataclass
class RunConfig:
    """The whole run. ``prompts_per_step`` prompts x ``rollout.n`` rollouts per step;
    ``total_steps=0`` only evaluates the starting policy."""

    model: ModelConfig = field(default_factory=ModelConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    experiment_name: str = "default"
    seed: int = 0
    total_steps: int = 100
    prompts_per_step: int = 16
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    resume: str = "auto"
    output_dir: str = "runs/${experiment_name}/${algorithm.name}/seed${seed}"
    device: str = "auto"
    logprob_gain_every: int = 0

    def validate(self) -> None:
        _require(self.total_steps >= 0, "total_steps", "must be >= 0 (0 evaluates the starting "
                 "policy only)", self.total_steps)
        _require(self.prompts_per_step >= 1, "prompts_per_step", "must be >= 1",
                 self.prompts_per_step)
        _require(self.checkpoint_every >= 0, "checkpoint_every", "must be >= 0",
                 self.checkpoint_every)
        _require(self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1",
                 self.keep_checkpoints)
        _require(self.resume in ("auto", "never") or not self.resume.startswith("-"), "resume",
                 "must be 'auto', 'never' or a checkpoint directory", self.resume)
        _one_of(self.device, ("auto", "cpu", "cuda"), "device")
        rollouts = self.prompts_per_step * self.rollout.n
        _require(rollouts % self.learner.mini_batches == 0, "learner.mini_batches",
                 f"must divide prompts_per_step x rollout.n = {rollouts}",
                 self.learner.mini_batches)
        for part in (self.model, self.algorithm, self.data, self.eval, self.rollout,
                     self.learner, self.logger):
            part.validate()
        if self.learner.lr_schedule != "constant":
            _require(math.isfinite(self.learner.lr), "learner.lr", "must be finite",
                     self.learner.lr)


def register_schema() -> None:
    """Register ``RunConfig`` as Hydra's ``schema`` so conf/config.yaml composes onto it."""
    ConfigStore.instance().store(name="schema", node=RunConfig)


def validate(cfg: DictConfig) -> RunConfig:
    """Resolve and type-check a composed config, then check every value range.

    Raises:
        ConfigError: naming the key, for a wrong type or an out-of-range value.
    """
    try:
        run: RunConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    except Exception as err:  # omegaconf raises several types; all name the key
        raise ConfigError(f"invalid configuration: {err}") from err
    run.validate()
    return run
