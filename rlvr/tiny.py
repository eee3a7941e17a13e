"""The embedded models: tiny Qwen2 / Qwen3 causal LMs with their own tokenizer, built offline.

``ensure_tiny_model`` returns a directory that loads through ``AutoTokenizer`` /
``AutoModelForCausalLM`` and vLLM exactly like a hub checkpoint. It is built deterministically
from its recipe (``TinyModelConfig`` plus the arithmetic task's config) and cached under
``<cache_dir>/tiny/<hash of the recipe>``:

1. a byte-level BPE trained on the task's text with Qwen's own pre-tokenizer pipeline (NFC,
   Qwen's split regex, ``ByteLevel(use_regex=False)``), saved as a ``Qwen2Tokenizer`` with a
   ChatML chat template (``qwen2``) or a Qwen3-style one whose generation prompt ends in an empty
   ``<think>`` block under ``enable_thinking=False`` (``qwen3``), and left padding;
2. a ``Qwen2ForCausalLM`` (the default: untied embeddings) or ``Qwen3ForCausalLM`` (q/k norms),
   with input and output embeddings tied when ``tie_word_embeddings`` (the papers' Qwen3-4B and
   Qwen2.5-1.5B/3B tie them), initialised from the seed;
3. a supervised warm start on reference solutions, asked in the prompt format of the
   architecture's family (``tiny``: the bare problem; ``qwen3``: rlvr/data/templates.py with
   thinking disabled): ``sft_steps`` AdamW steps with a cosine
   schedule and label smoothing. The smoothing leaves probability mass on every token, like the
   long tail of a pretrained LM's sampling distribution: the model knows more than it samples
   (greedy accuracy well above sampled accuracy, which starts between 20 % and 50 %), so RL
   groups are mixed and the entropy dynamics the papers study show within minutes. The probe
   accuracies are recorded in ``rlvr_tiny.json``, with the machine that built it.

The build is a training run: its weights depend on the instruction set of the kernels that
computed it, so a build under a kernel pin (``ATEN_CPU_CAPABILITY``, the CPU profiles'
``machine.AVX2_PIN``) is cached apart, under ``<hash>-isa-<pin>``, and never mixed with an
unpinned one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    PretrainedConfig,
    PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

from rlvr.config import ArithConfig, TinyModelConfig
from rlvr.data import arith
from rlvr.data.templates import render_prompt
from rlvr.digests import manifest_problem, write_manifest
from rlvr.learner.batching import collate
from rlvr.learner.learner import lr_lambda
from rlvr.reporting import machine
from rlvr.rewards import math_reward

log = logging.getLogger(__name__)

BUILD_VERSION = 1
MANIFEST = "rlvr_files.json"
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
QWEN3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}"
    "{{ '<think>\n\n</think>\n\n' }}{% endif %}{% endif %}"
)


@dataclass(frozen=True)
class Architecture:
    """How one ``model.tiny.architecture`` is built: its classes, chat template, the prompt
    family its warm start is asked in, and the special tokens beyond ``SPECIAL_TOKENS``."""

    config_class: type[PretrainedConfig]
    model_class: type[PreTrainedModel]
    chat_template: str
    family: str
    extra_tokens: tuple[str, ...] = ()


ARCHITECTURES = {
    "qwen2": Architecture(Qwen2Config, Qwen2ForCausalLM, CHAT_TEMPLATE, "tiny"),
    "qwen3": Architecture(Qwen3Config, Qwen3ForCausalLM, QWEN3_CHAT_TEMPLATE, "qwen3",
                          ("<think>", "</think>")),
}
# recipe fields added after the first release: left out of the hash at their defaults
_HASH_NEUTRAL_FIELDS = ("architecture", "tie_word_embeddings")
_PROBE_SIZE = 128
_LOG_EVERY = 50
_WARMUP_STEPS = 20


def recipe_hash(tiny: TinyModelConfig, task: ArithConfig) -> str:
    """Stable short hash of everything the built model depends on."""
    defaults = TinyModelConfig()
    fields = {k: v for k, v in asdict(tiny).items()
              if k not in _HASH_NEUTRAL_FIELDS or v != getattr(defaults, k)}
    recipe = {"version": BUILD_VERSION, "tiny": fields, "arith": asdict(task)}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def isa_suffix() -> str:
    """``-isa-avx2`` under ``ATEN_CPU_CAPABILITY=avx2`` (the kernels held to an instruction
    set), else empty."""
    pin = os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    return f"-isa-{pin}" if pin else ""


def ensure_tiny_model(tiny: TinyModelConfig, task: ArithConfig, cache_dir: str | Path) -> Path:
    """The directory of the tiny model for this recipe (and kernel pin, ``isa_suffix``),
    building it first if it is not cached or if the cached copy fails its manifest
    (``rlvr_files.json``: every file's digest)."""
    target = Path(cache_dir).expanduser() / "tiny" / (recipe_hash(tiny, task) + isa_suffix())
    if target.is_dir():
        problem = manifest_problem(target, MANIFEST)
        if problem is None:
            return target
        log.warning("the cached tiny model %s fails its check (%s): rebuilding it", target,
                    problem)
        broken = target.with_name(f"{target.name}.broken-{os.getpid()}")
        target.rename(broken)
        shutil.rmtree(broken, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    log.info("building the tiny model into %s", target)
    build_tiny_model(tiny, task, staging)
    write_manifest(staging, MANIFEST)
    try:
        staging.rename(target)
    except OSError:  # another process finished the same build first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def train_tokenizer(corpus: list[str], vocab_size: int,
                    architecture: Architecture = ARCHITECTURES["qwen2"]) -> Qwen2Tokenizer:
    """A byte-level BPE with Qwen's pipeline, wrapped as a ``Qwen2Tokenizer`` with the
    architecture's chat template."""
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[*SPECIAL_TOKENS, *architecture.extra_tokens],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(corpus, trainer)
    spec = json.loads(bpe.to_str())["model"]
    tokenizer = Qwen2Tokenizer(
        vocab=spec["vocab"], merges=[tuple(m) for m in spec["merges"]],
        eos_token="<|im_end|>", pad_token="<|endoftext|>",
        extra_special_tokens=["<|im_start|>", *architecture.extra_tokens],
    )
    tokenizer.chat_template = architecture.chat_template
    tokenizer.padding_side = "left"
    tokenizer.init_kwargs["padding_side"] = "left"
    return tokenizer


def _probe_accuracy(model: PreTrainedModel, tokenizer: Qwen2Tokenizer,
                    probe: list[tuple[arith.Problem, str]], max_new_tokens: int,
                    sample: bool, family: str) -> float:
    """Fraction of probe problems solved by one temperature-1 sample (or the greedy answer)."""
    prompts = [render_prompt(p.problem, family, tokenizer) for p, _ in probe]
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    mode = {"do_sample": True, "temperature": 1.0, "top_p": 1.0, "top_k": 0} if sample \
        else {"do_sample": False}
    model.eval()
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens,
                             pad_token_id=tokenizer.pad_token_id, **mode)
    model.train()
    texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    solved = sum(math_reward(t, p.answer) for t, (p, _) in zip(texts, probe, strict=True))
    return solved / len(probe)


def _smoothed_sft_loss(model: PreTrainedModel, batch, smoothing: float) -> torch.Tensor:
    """Token-mean cross-entropy on the response tokens with label smoothing ``smoothing``."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    selected = logits[batch.hidden_rows, batch.hidden_cols]
    return torch.nn.functional.cross_entropy(selected, batch.targets, label_smoothing=smoothing)


def build_tiny_model(tiny: TinyModelConfig, task: ArithConfig, out_dir: Path) -> float:
    """Build tokenizer and model into ``out_dir``; returns the final probe sampled accuracy."""
    torch.manual_seed(tiny.seed)
    rng = random.Random(tiny.seed)
    data = arith.train_set(task.levels, task.num_train, task.seed, task.num_eval)
    probe, data = data[-_PROBE_SIZE:], data[:-_PROBE_SIZE]

    architecture = ARCHITECTURES[tiny.architecture]
    corpus = [f"{p.problem}\n{s}" for p, s in data[:5000]]
    tokenizer = train_tokenizer(corpus, tiny.vocab_size, architecture)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    head_dim = {"head_dim": tiny.hidden_size // tiny.num_heads} \
        if tiny.architecture == "qwen3" else {}
    config = architecture.config_class(
        vocab_size=len(tokenizer), hidden_size=tiny.hidden_size,
        num_hidden_layers=tiny.num_layers, num_attention_heads=tiny.num_heads,
        num_key_value_heads=tiny.num_kv_heads, intermediate_size=tiny.intermediate_size,
        max_position_embeddings=tiny.max_position_embeddings,
        tie_word_embeddings=tiny.tie_word_embeddings,
        bos_token_id=tokenizer.pad_token_id, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32", **head_dim,
    )
    model = architecture.model_class(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[eos, tokenizer.pad_token_id], pad_token_id=tokenizer.pad_token_id,
        do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
    )

    prompts = [tokenizer(render_prompt(p.problem, architecture.family, tokenizer))["input_ids"]
               for p, _ in data]
    answers = [tokenizer(s)["input_ids"] + [eos] for _, s in data]
    max_new = max(len(a) for a in answers) + 8
    optimizer = torch.optim.AdamW(model.parameters(), lr=tiny.sft_lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda("cosine", _WARMUP_STEPS, tiny.sft_steps))
    model.train()
    for step in range(1, tiny.sft_steps + 1):
        rows = rng.sample(range(len(data)), tiny.sft_batch_size)
        batch = collate([prompts[i] for i in rows], [answers[i] for i in rows],
                        tokenizer.pad_token_id)
        loss = _smoothed_sft_loss(model, batch, tiny.sft_label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % _LOG_EVERY == 0:
            log.info("tiny SFT step %d/%d loss %.3f", step, tiny.sft_steps, loss.item())
    accuracy = _probe_accuracy(model, tokenizer, probe, max_new, True, architecture.family)
    greedy = _probe_accuracy(model, tokenizer, probe, max_new, False, architecture.family)
    log.info("tiny model: probe accuracy sampled %.3f, greedy %.3f", accuracy, greedy)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "rlvr_tiny.json").write_text(json.dumps(
        {"recipe": recipe_hash(tiny, task), "sft_steps": tiny.sft_steps,
         "probe_sampled_accuracy": accuracy,
         "probe_greedy_accuracy": greedy,
         "parameters": sum(p.numel() for p in model.parameters()),
         "built_on": machine.describe()}, indent=2))
    return accuracy
