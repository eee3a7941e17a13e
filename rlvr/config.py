"""Typed configuration of an rlvr run: the schema and its value ranges, nothing else.

Hydra composes YAML from ``conf/`` on top of these dataclasses (registered in Hydra's ConfigStore
as ``schema`` by ``register_schema``), so a misspelt key fails at composition time.
``to_run_config`` turns the composed DictConfig into these objects and checks every value range;
every error names the offending key (``algorithm.beta_pos must be >= 0, got -0.1``).

This module is a leaf: it imports nothing from rlvr. The algorithm parts' parameters
(``algorithm.<name>``) come from the registries, which the entry points hand over explicitly
(``rlvr.checks.register_schema``), so every part registered before that call is a field; the
checks that need the registries, the data or the file system (part names and parameters,
resume, data dirs, group sizes, data parallel) live in rlvr/checks.py.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, make_dataclass
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""


# Settings that may differ between the commands that train one run (rlvr/run_dir.py): where
# things are written and read from, what is logged, and the evaluation and checkpoint
# schedules. A key names itself and everything below it.
RESUMABLE_KEYS = (
    "output_dir", "resume", "device", "experiment_name", "logger",
    "eval.every_n_steps", "eval.at_start", "eval.at_end", "eval.dir", "data.dir",
    "model.cache_dir", "checkpoint_every", "keep_checkpoints", "logprob_gain_every", "plan",
    "rollout.sync_bucket_mb", "distributed",
)
# Keys a run directory's path names already (experiment, algorithm, seed), or that extend a
# run rather than make another (total_steps; rlvr/run_dir.py says when it is part of the run).
_NAMED_BY_PATH = ("experiment", "algorithm", "seed", "total_steps")
_MAX_NAME = 160


def is_under(key: str, prefixes: Sequence[str]) -> bool:
    """Whether the dotted ``key`` is one of ``prefixes`` or below one of them."""
    return any(key == p or key.startswith(f"{p}.") for p in prefixes)


def run_name(overrides: Sequence[str], seed: int) -> str:
    """The run directory below ``runs/<experiment>/<algorithm>/``: the command-line overrides
    that change results, sorted and joined (``algorithm.beta_pos=0.3,rollout.n=4``), then
    ``seed<seed>``; ``seed<seed>`` alone when there are none. So two runs that differ in a
    setting never share a directory by default. Path separators in values become ``_``; a name
    longer than 160 characters is cut and ends in a hash of the whole."""
    kept = []
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key in _NAMED_BY_PATH or is_under(key, (*RESUMABLE_KEYS, "hydra")):
            continue
        kept.append(f"{key}={value.replace('/', '_')}")
    name = ",".join(sorted(kept))
    if len(name) > _MAX_NAME:
        name = f"{name[:_MAX_NAME - 17]}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"
    return f"{name}/seed{seed}" if name else f"seed{seed}"


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
        _require(self.kl_coef >= 0, "algorithm.loss.kl_coef", "must be >= 0", self.kl_coef)
        _require(
            self.log_ratio_clamp > 0,
            "algorithm.loss.log_ratio_clamp",
            "must be > 0",
            self.log_ratio_clamp,
        )


@dataclass
class AlgorithmConfig:
    """One paper variant: an advantage estimator, token weights, a policy loss, optionally a group
    filter (``group_filter``, e.g. DAPO's ``informative``) and reward shapings
    (``reward_shaping``, e.g. DAPO's ``overlong``), each a named part of its registry
    (rlvr/algorithms/parts.py).

    The parts' parameters sit flat at ``algorithm.*`` (fields added by ``register_schema`` from
    the registries' declarations, listed in ``PARAMETERS``) so that sweeps read
    ``algorithm.beta_pos=...`` and ``algorithm.alpha=...``; a misspelt key is not a field and
    fails at composition. A parameter left ``null`` takes the part's default; each part receives
    only the parameters it declares, and a parameter set to a value that no part in use declares
    is an error (rlvr/checks.py).
    """

    PARAMETERS: ClassVar[tuple[str, ...]] = ()

    name: str = "grpo"
    advantage: str = "grpo"
    token_weights: list[str] = field(default_factory=list)
    policy_loss: str = "ppo_clip"
    group_filter: str | None = None
    reward_shaping: list[str] = field(default_factory=list)
    loss: LossConfig = field(default_factory=LossConfig)

    def part_names(self) -> list[tuple[str, str]]:
        """(kind, name) of every part in use, kinds named like the fields: the estimator, each
        token weight, the loss, the group filter (if any), each reward shaping."""
        return [("advantage", self.advantage),
                *(("token_weights", w) for w in self.token_weights),
                ("policy_loss", self.policy_loss),
                *([("group_filter", self.group_filter)] if self.group_filter else []),
                *(("reward_shaping", s) for s in self.reward_shaping)]

    def parameters(self) -> dict[str, Any]:
        """The parameters set in config (not null), by name; each part takes its own
        (``Registry.own``)."""
        return {k: getattr(self, k) for k in self.PARAMETERS if getattr(self, k) is not None}

    def validate(self) -> None:
        self.loss.validate()


@dataclass
class ArithConfig:
    """The synthetic verifiable task (rlvr/data/arith.py)."""

    seed: int = 1234
    levels: list[int] = field(default_factory=lambda: [1, 2, 3])
    num_train: int = 20000
    num_eval: int = 200

    def validate(self) -> None:
        _require(self.num_train >= 1, "data.arith.num_train", "must be >= 1", self.num_train)
        _require(self.num_eval >= 1, "data.arith.num_eval", "must be >= 1", self.num_eval)
        _require(bool(self.levels), "data.arith.levels", "must be a non-empty list", self.levels)


@dataclass
class DataConfig:
    """The training prompts: the synthetic ``arith`` task or a registered benchmark.

    ``max_prompt_tokens``: drop training prompts longer than this many tokens (the count is
    logged); null keeps every prompt, and a prompt that leaves no room in the model's context
    for ``rollout.max_new_tokens`` is then an error.
    """

    name: str = "arith"
    split: str = "train"
    dir: str | None = None
    limit: int | None = None
    shuffle_seed: int = 0
    max_prompt_tokens: int | None = None
    arith: ArithConfig = field(default_factory=ArithConfig)

    def validate(self) -> None:
        if self.limit is not None:
            _require(self.limit > 0, "data.limit", "must be > 0", self.limit)
        if self.max_prompt_tokens is not None:
            _require(self.max_prompt_tokens >= 1, "data.max_prompt_tokens", "must be >= 1",
                     self.max_prompt_tokens)
        self.arith.validate()


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

    ``name`` names the protocol (``python -m rlvr.evaluate`` files its results under
    ``runs/eval/<name>/``); ``dir`` is where benchmark files are read from. ``pass_k``: pass@j
    is reported for each j here on every benchmark with ``k >= j`` samples.
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
    """Sampling of G rollouts per prompt and the engine that does it.

    ``sync_bucket_mb``: the weight sync's unit, in MiB of the engine's dtype (a larger tensor is
    a bucket alone): behind vLLM's multiprocess executor one weight file; in process the
    learner's tensors go to vLLM's loader one at a time as it asks, so the bucket bounds what a
    rank holds (under FSDP: gathers) beyond its own weights (rlvr/rollout/weight_buckets.py).
    """

    engine: str = "vllm"
    n: int = 8
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.5
    tensor_parallel_size: int = 1
    sleep_mode: bool = False
    kv_cache_gib: int = 1
    enforce_eager: bool = True
    lora_sync: str = "adapter"
    tis_cap: float | None = None
    sync_bucket_mb: int = 512

    @property
    def sync_bucket_bytes(self) -> int:
        return self.sync_bucket_mb << 20

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
        _require(self.sync_bucket_mb >= 1, "rollout.sync_bucket_mb", "must be >= 1 (MiB)",
                 self.sync_bucket_mb)


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
    """Where metrics and logs go: always ``metrics.jsonl`` and ``train.log`` in the run directory,
    plus W&B. ``verbose``: show vLLM's and transformers' start-up logs on the console too (they
    always go to ``train.log``)."""

    wandb_mode: str = "auto"
    project: str = "rlvr"
    entity: str | None = None
    group: str | None = None
    job_type: str = "train"
    tags: list[str] = field(default_factory=list)
    samples_every: int = 0
    samples_count: int = 8
    verbose: bool = False

    def validate(self) -> None:
        _one_of(self.wandb_mode, ("auto", "online", "offline", "disabled"), "logger.wandb_mode")


@dataclass
class PlanConfig:
    """``plan.*`` (rlvr/plan/): the machine the plan is made for, and whether training stops on it.

    ``gpus``, ``gpu_memory_gib``: what ``python -m rlvr.plan`` plans for (the trainer uses its
    own world size and the device's memory). ``prompt_tokens``: the longest prompt in tokens
    (the trainer passes the longest encoded prompt). ``enforce``: on CUDA the trainer stops
    before loading weights when the plan does not fit; ``plan.enforce=false`` goes on anyway.
    ``cuda_context_gib``: per process, the CUDA context and kernels (assumed, not measurable on
    a CPU; ``benchmarks/gpu_check.py`` prints planned beside measured).
    """

    gpus: int = 1
    gpu_memory_gib: float = 80.0
    prompt_tokens: int = 256
    enforce: bool = True
    cuda_context_gib: float = 1.0

    def validate(self) -> None:
        _require(self.gpus >= 1, "plan.gpus", "must be >= 1", self.gpus)
        _require(self.gpu_memory_gib > 0, "plan.gpu_memory_gib", "must be > 0",
                 self.gpu_memory_gib)
        _require(self.prompt_tokens >= 1, "plan.prompt_tokens", "must be >= 1",
                 self.prompt_tokens)


@dataclass
class DistributedConfig:
    """The torchrun process group (rlvr/learner/distributed.py).

    ``timeout_s``: how long a rank waits in a collective before the group fails with an error
    naming this key. The default covers the longest wait of a run, rank 0 evaluating
    ``eval=math5`` at start while the other ranks wait: about 6,900 samples of up to 4,096
    tokens, 15-25 minutes on one GPU (28 M tokens at most; at 20,000 decoded tokens/s, the
    order of vLLM on one GPU for a 4B model, 1,410 s = 23.5 minutes); twice the upper end
    (50 minutes) rounded up to the hour: 3,600 s (NCCL's default is 600 s, gloo's 1,800 s).
    A checkpoint save at Qwen3-4B (45 GiB written and hashed, about 2-3 minutes) is far below.
    """

    timeout_s: float = 3600.0

    def validate(self) -> None:
        _require(self.timeout_s > 0, "distributed.timeout_s", "must be > 0 (seconds)",
                 self.timeout_s)


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
    plan: PlanConfig = field(default_factory=PlanConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
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
        _check_finite(self)
        _require(bool(str(self.output_dir).strip()), "output_dir", "must name a directory",
                 self.output_dir)
        _require(self.total_steps >= 0, "total_steps", "must be >= 0 (0 evaluates the starting "
                 "policy only)", self.total_steps)
        _require(self.prompts_per_step >= 1, "prompts_per_step", "must be >= 1",
                 self.prompts_per_step)
        _require(self.checkpoint_every >= 0, "checkpoint_every", "must be >= 0",
                 self.checkpoint_every)
        _require(self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1",
                 self.keep_checkpoints)
        _one_of(self.device, ("auto", "cpu", "cuda"), "device")
        rollouts = self.prompts_per_step * self.rollout.n
        _require(rollouts % self.learner.mini_batches == 0, "learner.mini_batches",
                 f"must divide prompts_per_step x rollout.n = {rollouts}",
                 self.learner.mini_batches)
        for part in (self.model, self.algorithm, self.data, self.eval, self.rollout,
                     self.learner, self.logger, self.plan, self.distributed):
            part.validate()


def _check_finite(node: Any, prefix: str = "") -> None:
    """Every float of the configuration is finite: an infinite learning rate, weight decay or
    coefficient passes every range check and then writes NaN weights at the first step."""
    if is_dataclass(node):
        for f in fields(node):
            _check_finite(getattr(node, f.name), f"{prefix}.{f.name}" if prefix else f.name)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _check_finite(item, f"{prefix}[{i}]")
    elif isinstance(node, float):
        _require(math.isfinite(node), prefix, "must be finite", node)


def _check_known_keys(cfg: DictConfig, schema: Any, prefix: str = "") -> None:
    """Every key of the composed config is a field of the schema: ``+algorithm.beta_poss=0.1``
    (a misspelt key added with ``+``) would otherwise be dropped without a word."""
    names = {f.name for f in fields(schema)}
    for key, value in cfg.items_ex(resolve=False):
        name = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"{name}: no such key in the schema (rlvr/config.py); check its "
                              f"spelling (a key added with + must be one the schema has)")
        default = getattr(schema, str(key))
        if isinstance(value, DictConfig) and is_dataclass(default):
            _check_known_keys(value, default, f"{name}.")


def register_schema(parameters: Mapping[str, type]) -> type[RunConfig]:
    """Build the run schema with one optional ``algorithm.<name>`` field per entry of
    ``parameters`` (name -> type of its default, from the registries:
    ``rlvr.algorithms.parts.declared_parameters``), register it as Hydra's ``schema`` so
    conf/config.yaml composes onto it, and register the ``rlvr_run_name`` resolver (``run_name``)
    that names run directories. Returns the schema's class (a ``RunConfig``)."""
    global _SCHEMA
    algorithm = make_dataclass(
        "AlgorithmConfig", [(name, kind | None, field(default=None))
                            for name, kind in parameters.items()],
        bases=(AlgorithmConfig,), namespace={"PARAMETERS": tuple(parameters),
                                             "__module__": __name__})
    _SCHEMA = make_dataclass(
        "RunConfig", [("algorithm", algorithm, field(default_factory=algorithm))],
        bases=(RunConfig,), namespace={"__module__": __name__})
    ConfigStore.instance().store(name="schema", node=_SCHEMA)
    if not OmegaConf.has_resolver("rlvr_run_name"):
        OmegaConf.register_new_resolver("rlvr_run_name",
                                        lambda overrides, seed: run_name(list(overrides), seed))
    return _SCHEMA


_SCHEMA: type[RunConfig] | None = None


def schema() -> type[RunConfig]:
    """The registered run schema (``register_schema``).

    Raises:
        RuntimeError: no entry point registered it yet.
    """
    if _SCHEMA is None:
        raise RuntimeError("the run schema is not registered: call "
                           "rlvr.checks.register_schema() first")
    return _SCHEMA


def algorithm_config(**values: Any) -> AlgorithmConfig:
    """An ``AlgorithmConfig`` of the registered schema (its parts' parameters are fields), for
    code that builds one without Hydra (tests, benchmarks)."""
    return type(schema()().algorithm)(**values)


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Type-check a composed config against the registered schema and check every value range.

    Raises:
        ConfigError: naming the key, for an unknown key, a wrong type or an out-of-range value.
    """
    _check_known_keys(cfg, schema()())
    try:
        run: RunConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    except Exception as err:  # omegaconf raises several types; all name the key
        raise ConfigError(f"invalid configuration: {err}") from err
    run.validate()
    return run
