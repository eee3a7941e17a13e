"""Memory arithmetic of one GPU: the learner's parts and vLLM's, and the peak over a step.

Notation (per GPU): P parameters of the model, P_t of them trainable (all for a full fine-tune,
the adapter's for LoRA), V vocabulary, H hidden, I intermediate, A = heads x head_dim, L layers,
n tokens per micro-batch (rows x padded length), of them n_r response tokens (rows x
``rollout.max_new_tokens``), c = min(learner.logprob_chunk, n_r), s_c bytes of
an element in the compute dtype (``model.dtype``: 4 or 2), N data-parallel GPUs.

Learner, resident for the whole run (``Plan.resident``):

- weights: full fine-tune 4 P (float32 master weights); LoRA s_c P (frozen base) + 4 P_t;
- optimiser state: AdamW's two float32 moments 8 P_t, plus a 4-byte step per trainable tensor;
- frozen reference (``algorithm.loss.kl_coef > 0``, full fine-tune): 4 P (LoRA: the adapter is
  switched off instead, no copy).

Under ``learner.strategy=fsdp`` each of these is the rank's shard: per tensor ceil(d0 / N) rows
(FSDP2 shards dim 0, padded).

During the update, on top (``Plan.update_peak``), the largest of three moments; when an
optimiser step accumulates several micro-batches (rows per step per GPU, prompts_per_step x
rollout.n / (mini_batches x N), more than a micro-batch holds), the gradients 4 P_t of the earlier
micro-batches are held through the forward and backward of the later ones and add to the first
two:

- end of forward: activations + autocast copies + the log-prob forward workspace 8 c V;
- start of backward: activations + the autocast copies still saved + the log-prob backward
  workspace (two float32 [c, V] buffers, 8 c V; on CUDA with s_c = 2 at most
  max(8 c V, 6 c V + 2 V H): the cast of grad_z and the chunk's s_c product of the output-layer
  gradient, rlvr/learner/logprobs.py) + the float32 output-layer gradient buffer 4 V H; at its end
  the gradients 4 P_t (+ a transient 4 V H when input and output embeddings are tied: the
  embedding's gradient is added into the output layer's);
- optimiser step: gradients 4 P_t + AdamW's temporaries (CUDA's foreach path: 4 P_t, one
  float32 copy of every trainable tensor; the CPU's per-tensor path: 2 x 4 bytes of the
  largest trainable tensor).

Activations per token of one decoder layer (bytes saved for backward by transformers' Qwen2/3
layers, from what each op keeps): two RMSNorms keep their float32 input and normalised output
((4 + s_r) H each, s_r the residual stream's bytes: 4 for a full fine-tune, s_c for LoRA); the
linear layers keep their input (full fine-tune under autocast: one s_c copy per linear, 5 x s_c
H; else the norm's output once per group, 2 x s_r H); attention keeps q, k and v (k and v
repeated to A), its output and the o_proj input (5 A s_c); the MLP keeps gate, up, their
product's factors and down's input (4 I s_c); Qwen3's q/k norms keep (4 + s_c)(A + kv) more.
Outside the layers: the final norm ((4 + s_r) H), its output (4 H, float32 only: the
last-position view that the model's own lm_head keeps), and per response token the selected
hidden states (s_c H).
With gradient checkpointing a layer keeps only its input (s_r H per token) and one layer is
recomputed at a time. Autocast copies (full fine-tune, s_c = 2): every linear weight of the
layers and the output layer cast to s_c, held from the forward into the backward (with
checkpointing only the output layer's), plus one more copy of the output layer until the
forward ends (the model's own last-position logits). Under FSDP one layer is gathered ahead of
the one computing: 2 layers of weights in the compute dtype plus one layer's float32 unsharded
gradient, and the root (embeddings, final norm) stays gathered; its mixed-precision policy
gathers the weights already in the compute dtype, so autocast makes no copies.

vLLM (``rollout.gpu_memory_utilization`` u of M bytes per GPU): u M while awake; with
``rollout.sleep_mode=true`` it sleeps during the update (level 2 for a full fine-tune: weights
and KV cache dropped; level 1 for LoRA: KV cache dropped, weights offloaded to host memory), so
0 is held then. Each process also holds a CUDA context (``plan.cuda_context_gib``, assumed).

Peak = max(loading: the whole weights and reference on every GPU before FSDP shards them,
start-up: weights + reference + u M (vLLM starts after the learner), rollout: resident + u M,
update: resident + update extra + (0 asleep | u M awake)) + CUDA context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rlvr.config import ConfigError, PlanConfig, RunConfig
from rlvr.plan.shapes import ModelShape, resolve_shape

GIB = 2 ** 30
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
ADAMW_STATE_BYTES = 8
ADAMW_STEP_BYTES = 4
LORA_MODULES = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn",
                "o_proj": "self_attn", "gate_proj": "mlp", "up_proj": "mlp",
                "down_proj": "mlp"}


def sharded_numel(shape: tuple[int, ...], shards: int) -> int:
    """Elements one rank holds of a tensor FSDP2 shards on dim 0: ceil(d0 / N) x the rest."""
    if shards == 1 or not shape:
        return math.prod(shape)
    return math.ceil(shape[0] / shards) * math.prod(shape[1:])


def lora_tensors(shape: ModelShape, r: int, targets: list[str]) -> list[tuple[str, tuple]]:
    """(name, shape) of PEFT's adapter for each targeted linear (in -> out): A [r, in] and
    B [out, r]."""
    sizes = {"q_proj": (shape.hidden_size, shape.q_size),
             "k_proj": (shape.hidden_size, shape.kv_size),
             "v_proj": (shape.hidden_size, shape.kv_size),
             "o_proj": (shape.q_size, shape.hidden_size),
             "gate_proj": (shape.hidden_size, shape.intermediate_size),
             "up_proj": (shape.hidden_size, shape.intermediate_size),
             "down_proj": (shape.intermediate_size, shape.hidden_size)}
    out = []
    for i in range(shape.num_layers):
        for module in targets:
            if module not in sizes:
                raise ConfigError(f"learner.lora.target_modules: the memory plan knows "
                                  f"{sorted(sizes)}, got {module!r}")
            fan_in, fan_out = sizes[module]
            prefix = f"model.layers.{i}.{LORA_MODULES[module]}.{module}"
            out += [(f"{prefix}.lora_A.weight", (r, fan_in)),
                    (f"{prefix}.lora_B.weight", (fan_out, r))]
    return out


def tensor_bytes(tensors: list[tuple[str, tuple]], element_bytes: int, shards: int = 1) -> int:
    """sum over tensors of (elements on one rank) x ``element_bytes``."""
    return sum(sharded_numel(s, shards) for _, s in tensors) * element_bytes


def layer_activation_bytes_per_token(shape: ModelShape, compute_bytes: int, residual_bytes: int,
                                     autocast_inputs: bool) -> int:
    """Bytes one decoder layer saves for backward per token (module docstring):
    2 (4 + s_r) H + linear inputs + 5 A s_c + 4 I s_c [+ (4 + s_c)(A + kv) for Qwen3], with
    linear inputs 5 s_c H under autocast (one cast copy per linear) or 2 s_r H."""
    h, a = shape.hidden_size, shape.q_size
    norms = 2 * (4 + residual_bytes) * h
    linear_inputs = 5 * compute_bytes * h if autocast_inputs else 2 * residual_bytes * h
    attention = 5 * a * compute_bytes
    mlp = 4 * shape.intermediate_size * compute_bytes
    qk_norms = (4 + compute_bytes) * (a + shape.kv_size) if shape.architecture == "qwen3" else 0
    return norms + linear_inputs + attention + mlp + qk_norms


def tokens_per_micro_batch(micro_batch_size: int, max_tokens: int | None, seq_len: int) -> int:
    """Padded tokens of the largest micro-batch when every row has ``seq_len`` tokens:
    rows = min(micro_batch_size, max(1, max_tokens // seq_len)) (rlvr/learner/batching.py)."""
    rows = micro_batch_size if max_tokens is None \
        else min(micro_batch_size, max(1, max_tokens // seq_len))
    return rows * seq_len


@dataclass
class LearnerSetting:
    """What the learner's memory depends on besides the shape. ``cuda``: AdamW's foreach path
    and the low-precision output-layer gradient (False: the CPU's per-tensor AdamW).
    ``accumulates``: an optimiser step takes more than one micro-batch."""

    dtype: str = "float32"
    lora: bool = False
    lora_r: int = 16
    lora_targets: tuple[str, ...] = tuple(LORA_MODULES)
    reference: bool = False
    gradient_checkpointing: bool = False
    tokens: int = 1024
    response_tokens: int = 512
    logprob_chunk: int = 1024
    shards: int = 1
    accumulates: bool = False
    cuda: bool = True


@dataclass
class LearnerPlan:
    """Bytes per GPU of each part of the learner (module docstring for the formulas)."""

    weights: int
    gradients: int
    optimizer: int
    reference: int
    activations: int
    autocast_forward: int
    autocast_backward: int
    logprob_forward: int
    logprob_backward: int
    optimizer_temporaries: int
    tied_embedding_gradient: int
    fsdp_unsharded: int
    accumulated_gradients: int
    unsharded_weights_and_reference: int

    @property
    def resident(self) -> int:
        return self.weights + self.optimizer + self.reference

    @property
    def moments(self) -> dict[str, int]:
        """Bytes above ``resident`` at the three moments of the update."""
        held = self.fsdp_unsharded + self.accumulated_gradients
        return {
            "end of forward": held + self.activations + self.autocast_forward
            + self.logprob_forward,
            "backward": held + max(
                self.activations + self.autocast_backward + self.logprob_backward,
                self.gradients + self.tied_embedding_gradient),
            "optimiser step": self.gradients + self.optimizer_temporaries,
        }

    @property
    def update_peak(self) -> int:
        return self.resident + max(self.moments.values())


def plan_learner(shape: ModelShape, s: LearnerSetting) -> LearnerPlan:
    """Every learner term for ``shape`` under setting ``s`` (module docstring)."""
    c = DTYPE_BYTES[s.dtype]
    base = shape.tensors()
    trainable = lora_tensors(shape, s.lora_r, list(s.lora_targets)) if s.lora else base
    autocast = c != 4
    full_autocast = autocast and not s.lora
    residual = c if s.lora else 4
    weights = tensor_bytes(base, c if s.lora else 4, s.shards)
    if s.lora:
        weights += tensor_bytes(trainable, 4, s.shards)
    grads = tensor_bytes(trainable, 4, s.shards)
    optimizer = tensor_bytes(trainable, ADAMW_STATE_BYTES, s.shards) \
        + ADAMW_STEP_BYTES * len(trainable)
    reference = tensor_bytes(base, 4, s.shards) if s.reference and not s.lora else 0

    h, v, n = shape.hidden_size, shape.vocab_size, s.tokens
    per_layer = layer_activation_bytes_per_token(shape, c, residual, full_autocast)
    outside = n * ((4 + residual) * h + (4 * h if not autocast else 0)) \
        + s.response_tokens * c * h
    layers = shape.num_layers * residual * h + per_layer if s.gradient_checkpointing \
        else shape.num_layers * per_layer
    activations = n * layers + outside
    linear_weights = sum(math.prod(sh) for name, sh in shape.tensors()
                         if name.endswith("proj.weight"))
    head = v * h
    one_layer_linear = linear_weights // shape.num_layers
    if full_autocast and s.shards == 1:
        autocast_backward = c * (head + (one_layer_linear if s.gradient_checkpointing
                                         else linear_weights))
        autocast_forward = c * (linear_weights + 2 * head)
    else:
        autocast_forward = autocast_backward = 0
    chunk = min(s.logprob_chunk, s.response_tokens)
    logprob_forward = 8 * chunk * v
    workspace = 8 * chunk * v
    if s.cuda and autocast:
        workspace = max(workspace, 6 * chunk * v + c * head)
    logprob_backward = workspace + 4 * head
    largest = max(math.prod(sh) for _, sh in trainable)
    optimizer_temporaries = grads if s.cuda else 2 * 4 * largest
    tied = 4 * head if shape.tie_word_embeddings and not s.lora else 0
    fsdp = 0
    if s.shards > 1:
        layer = sum(math.prod(sh) for _, sh in shape.layer_tensors(0))
        root = sum(math.prod(sh) for _, sh in shape.root_tensors())
        fsdp = 2 * layer * c + 4 * layer + root * c
    return LearnerPlan(weights=weights, gradients=grads, optimizer=optimizer,
                       reference=reference, activations=activations,
                       autocast_forward=autocast_forward, autocast_backward=autocast_backward,
                       logprob_forward=logprob_forward, logprob_backward=logprob_backward,
                       optimizer_temporaries=optimizer_temporaries,
                       tied_embedding_gradient=tied, fsdp_unsharded=fsdp,
                       accumulated_gradients=grads if s.accumulates else 0,
                       unsharded_weights_and_reference=(weights + reference) if s.shards == 1
                       else _whole(shape, s, trainable))


def _whole(shape: ModelShape, s: LearnerSetting, trainable: list[tuple[str, tuple]]) -> int:
    """Weights (and the reference copy) of one GPU before sharding: every rank loads the whole
    model, and the reference is copied before the learner shards it."""
    c = DTYPE_BYTES[s.dtype]
    if s.lora:
        return tensor_bytes(shape.tensors(), c) + tensor_bytes(trainable, 4)
    return tensor_bytes(shape.tensors(), 4) * (2 if s.reference else 1)


@dataclass
class Plan:
    """The whole plan of one GPU: the learner, vLLM, and the peak over the step."""

    shape: ModelShape
    setting: LearnerSetting
    learner: LearnerPlan
    gpu_bytes: int
    vllm_awake: int
    sleep_mode: bool
    cuda_context: int

    @property
    def phases(self) -> dict[str, int]:
        """Bytes in use per GPU in each phase of a step."""
        learner = self.learner
        during_update = 0 if self.sleep_mode else self.vllm_awake
        return {
            "loading (whole weights before sharding)": learner.unsharded_weights_and_reference
            + self.cuda_context,
            "start-up (learner weights, then vLLM)": learner.weights + learner.reference
            + self.vllm_awake + self.cuda_context,
            "rollout (vLLM awake)": learner.resident + self.vllm_awake + self.cuda_context,
            "update": learner.update_peak + during_update + self.cuda_context,
        }

    @property
    def peak(self) -> int:
        return max(self.phases.values())

    @property
    def fits(self) -> bool:
        return self.peak <= self.gpu_bytes

    def remedies(self) -> list[str]:
        """What would lower the peak, for the settings that allow it."""
        s, out = self.setting, []
        if not s.lora:
            out.append("more GPUs with learner.strategy=fsdp (torchrun)")
        if not s.lora:
            out.append("LoRA (learner=lora)")
        if not s.gradient_checkpointing:
            out.append("learner.gradient_checkpointing=true")
        out.append("fewer tokens per micro-batch (learner.micro_batch_size, "
                   "learner.max_tokens_per_micro_batch)")
        if not self.sleep_mode:
            out.append("rollout.sleep_mode=true")
        return out

    def verdict(self) -> str:
        """The one line: ``fits: ...`` or ``does not fit: ...; remedies``."""
        text = f"peak {self.peak / GIB:.1f} GiB of {self.gpu_bytes / GIB:.1f} GiB per GPU"
        if self.fits:
            return f"fits: {text}"
        return f"does not fit: {text}; try {', '.join(self.remedies())}"

    def table(self) -> str:
        """Every term in GiB per GPU, then the phases, then the verdict."""
        s, lp = self.setting, self.learner
        rows = [
            ("learner: weights", lp.weights,
             f"{'LoRA base ' + s.dtype + ' + adapter float32' if s.lora else 'float32 master'}"),
            ("learner: gradients", lp.gradients, "float32, trainable parameters"),
            ("learner: optimiser state", lp.optimizer, "AdamW, two float32 moments"),
            ("learner: frozen reference", lp.reference,
             "float32 copy (KL on)" if lp.reference else "none"),
            ("learner: activations", lp.activations,
             f"{s.tokens} tokens per micro-batch, gradient checkpointing "
             f"{'on' if s.gradient_checkpointing else 'off'}"),
            ("learner: autocast copies (forward / backward)",
             lp.autocast_forward, f"{lp.autocast_backward / GIB:.2f} GiB in backward"),
            ("learner: log-prob chunk workspace (forward / backward)", lp.logprob_forward,
             f"{lp.logprob_backward / GIB:.2f} GiB in backward"),
            ("learner: gradients held across micro-batches", lp.accumulated_gradients,
             "accumulating" if s.accumulates else "one micro-batch per optimiser step"),
            ("learner: optimiser temporaries", lp.optimizer_temporaries,
             "foreach (CUDA)" if s.cuda else "per tensor (CPU)"),
            ("learner: FSDP unsharded layers and root", lp.fsdp_unsharded,
             f"{s.shards} shards"),
            ("vLLM: memory utilisation", self.vllm_awake,
             "freed during the update (sleep mode)" if self.sleep_mode
             else "held during the update"),
            ("CUDA context", self.cuda_context, "assumed"),
        ]
        lines = [f"memory plan per GPU: {self.shape.num_parameters() / 1e9:.3f} B parameters, "
                 f"{s.shards} GPU(s), {s.dtype}, {'LoRA' if s.lora else 'full fine-tune'}",
                 "", f"{'part':<56} {'GiB':>8}  note"]
        lines += [f"{name:<56} {value / GIB:>8.2f}  {note}" for name, value, note in rows]
        lines += ["", f"{'learner update moment (above resident)':<56} {'GiB':>8}"]
        lines += [f"{name:<56} {value / GIB:>8.2f}" for name, value in lp.moments.items()]
        lines += ["", f"{'phase (per GPU)':<56} {'GiB':>8}"]
        lines += [f"{name:<56} {value / GIB:>8.2f}" for name, value in self.phases.items()]
        return "\n".join([*lines, "", self.verdict()])


def setting_for(run: RunConfig, shards: int, prompt_tokens: int) -> LearnerSetting:
    """The learner setting of a run: dtype, LoRA, reference, checkpointing, tokens."""
    learner = run.learner
    seq_len = prompt_tokens + run.rollout.max_new_tokens
    tokens = tokens_per_micro_batch(learner.micro_batch_size, learner.max_tokens_per_micro_batch,
                                    seq_len)
    shards = shards if learner.strategy == "fsdp" else 1
    rows_per_step = math.ceil(run.prompts_per_step * run.rollout.n
                              / (learner.mini_batches * shards))
    return LearnerSetting(
        dtype=run.model.dtype, lora=learner.lora.enabled, lora_r=learner.lora.r,
        lora_targets=tuple(learner.lora.target_modules),
        reference=run.algorithm.loss.kl_coef > 0,
        gradient_checkpointing=learner.gradient_checkpointing,
        tokens=tokens, response_tokens=tokens // seq_len * run.rollout.max_new_tokens,
        logprob_chunk=learner.logprob_chunk,
        shards=shards, accumulates=rows_per_step > tokens // seq_len)


def plan_run(run: RunConfig, model_path: str | None = None, *, gpus: int | None = None,
             gpu_memory_bytes: int | None = None, prompt_tokens: int | None = None) -> Plan:
    """The plan of ``run`` on ``gpus`` GPUs of ``gpu_memory_bytes`` each (defaults:
    ``plan.gpus``, ``plan.gpu_memory_gib``, ``plan.prompt_tokens``)."""
    cfg: PlanConfig = run.plan
    gpus = cfg.gpus if gpus is None else gpus
    gpu_bytes = int(cfg.gpu_memory_gib * GIB) if gpu_memory_bytes is None else gpu_memory_bytes
    prompt_tokens = cfg.prompt_tokens if prompt_tokens is None else prompt_tokens
    shape = resolve_shape(run.model, model_path)
    setting = setting_for(run, gpus, prompt_tokens)
    vllm = int(run.rollout.gpu_memory_utilization * gpu_bytes) \
        if run.rollout.engine == "vllm" else 0
    return Plan(shape=shape, setting=setting, learner=plan_learner(shape, setting),
                gpu_bytes=gpu_bytes, vllm_awake=vllm,
                sleep_mode=run.rollout.sleep_mode and run.rollout.engine == "vllm",
                cuda_context=int(cfg.cuda_context_gib * GIB))


def enforce_plan(run: RunConfig, model_path: str, device: torch.device, *,
                 prompt_tokens: int | None, gpu_memory_bytes: int | None,
                 gpus: int | None) -> None:
    """``rlvr.plan.check_fits_before_loading``: raise the ``does not fit`` line on CUDA."""
    if device.type != "cuda" or not run.plan.enforce:
        return
    from rlvr.learner import distributed

    if gpu_memory_bytes is None:
        gpu_memory_bytes = torch.cuda.get_device_properties(device).total_memory
    plan = plan_run(run, model_path, gpus=distributed.world_size() if gpus is None else gpus,
                    gpu_memory_bytes=gpu_memory_bytes, prompt_tokens=prompt_tokens)
    if not plan.fits:
        raise ConfigError(f"{plan.verdict()} (python -m rlvr.plan prints every term; "
                          f"plan.enforce=false goes on anyway)")
