"""Model shapes for the memory plan: every parameter tensor of a Qwen2/Qwen3 causal LM, from its
``config.json`` (a local directory or the Hugging Face cache) or from the built-in table of the
papers' models, so that the plan runs offline before anything is downloaded."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from rlvr.config import ConfigError, ModelConfig


@dataclass(frozen=True)
class ModelShape:
    """The sizes that fix a decoder-only Qwen model's tensors.

    ``architecture``: ``qwen2`` (q/k/v biases) or ``qwen3`` (no biases, RMSNorm on q and k per
    head). ``head_dim`` defaults to hidden / heads in the configs.
    """

    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tie_word_embeddings: bool

    @property
    def q_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim

    def layer_tensors(self, i: int) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of decoder layer ``i``'s parameters, as transformers names them."""
        h, p = self.hidden_size, f"model.layers.{i}."
        out = [(f"{p}self_attn.q_proj.weight", (self.q_size, h)),
               (f"{p}self_attn.k_proj.weight", (self.kv_size, h)),
               (f"{p}self_attn.v_proj.weight", (self.kv_size, h)),
               (f"{p}self_attn.o_proj.weight", (h, self.q_size))]
        if self.architecture == "qwen2":
            out += [(f"{p}self_attn.q_proj.bias", (self.q_size,)),
                    (f"{p}self_attn.k_proj.bias", (self.kv_size,)),
                    (f"{p}self_attn.v_proj.bias", (self.kv_size,))]
        else:
            out += [(f"{p}self_attn.q_norm.weight", (self.head_dim,)),
                    (f"{p}self_attn.k_norm.weight", (self.head_dim,))]
        out += [(f"{p}mlp.gate_proj.weight", (self.intermediate_size, h)),
                (f"{p}mlp.up_proj.weight", (self.intermediate_size, h)),
                (f"{p}mlp.down_proj.weight", (h, self.intermediate_size)),
                (f"{p}input_layernorm.weight", (h,)),
                (f"{p}post_attention_layernorm.weight", (h,))]
        return out

    def root_tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of the parameters outside the decoder layers (one tensor for tied
        input and output embeddings)."""
        out = [("model.embed_tokens.weight", (self.vocab_size, self.hidden_size)),
               ("model.norm.weight", (self.hidden_size,))]
        if not self.tie_word_embeddings:
            out.append(("lm_head.weight", (self.vocab_size, self.hidden_size)))
        return out

    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        """Every parameter tensor (name, shape)."""
        return [t for i in range(self.num_layers) for t in self.layer_tensors(i)] \
            + self.root_tensors()

    def num_parameters(self) -> int:
        return sum(math.prod(shape) for _, shape in self.tensors())


def _qwen2(vocab: int, hidden: int, inter: int, layers: int, heads: int, kv: int,
           tied: bool) -> ModelShape:
    return ModelShape("qwen2", vocab, hidden, inter, layers, heads, kv, hidden // heads, tied)


# From the models' config.json on the hub (read when this table was written).
BUILT_IN: dict[str, ModelShape] = {
    "Qwen/Qwen3-4B": ModelShape("qwen3", 151_936, 2560, 9728, 36, 32, 8, 128, True),
    "Qwen/Qwen2.5-1.5B-Instruct": _qwen2(151_936, 1536, 8960, 28, 12, 2, True),
    "Qwen/Qwen2.5-Math-1.5B": _qwen2(151_936, 1536, 8960, 28, 12, 2, True),
    "Qwen/Qwen2.5-3B-Instruct": _qwen2(151_936, 2048, 11008, 36, 16, 2, True),
    "Qwen/Qwen2.5-7B": _qwen2(152_064, 3584, 18944, 28, 28, 4, False),
    "Qwen/Qwen2.5-Math-7B": _qwen2(152_064, 3584, 18944, 28, 28, 4, False),
}


def shape_from_hf_config(config: dict) -> ModelShape:
    """The shape in a transformers ``config.json`` (model_type qwen2 or qwen3)."""
    kind = config.get("model_type")
    if kind not in ("qwen2", "qwen3"):
        raise ConfigError(f"model: the memory plan knows model_type qwen2 and qwen3, got "
                          f"{kind!r}; run with plan.enforce=false to skip the plan")
    heads = config["num_attention_heads"]
    return ModelShape(
        architecture=kind, vocab_size=config["vocab_size"], hidden_size=config["hidden_size"],
        intermediate_size=config["intermediate_size"],
        num_layers=config["num_hidden_layers"], num_heads=heads,
        num_kv_heads=config.get("num_key_value_heads") or heads,
        head_dim=config.get("head_dim") or config["hidden_size"] // heads,
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)))


def _cached_config(hub_id: str, revision: str | None) -> dict | None:
    """``config.json`` of ``hub_id`` from the local Hugging Face cache, without the network."""
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(hub_id, "config.json", revision=revision)
    return json.loads(Path(path).read_text()) if isinstance(path, str) else None


def resolve_shape(model: ModelConfig, model_path: str | None = None) -> ModelShape:
    """The shape of the configured model: the embedded tiny recipe, ``config.json`` in
    ``model_path`` (or ``model.path``) when it is a directory, the hub cache, then the built-in
    table.

    Raises:
        ConfigError: for a hub id that is neither cached nor built in.
    """
    if model.path == "tiny":
        t = model.tiny
        return ModelShape(t.architecture, t.vocab_size, t.hidden_size, t.intermediate_size,
                          t.num_layers, t.num_heads, t.num_kv_heads, t.hidden_size // t.num_heads,
                          t.tie_word_embeddings)
    for candidate in (model_path, model.path):
        if candidate and (Path(candidate).expanduser() / "config.json").exists():
            return shape_from_hf_config(json.loads(
                (Path(candidate).expanduser() / "config.json").read_text()))
    cached = _cached_config(model.path, model.revision)
    if cached is not None:
        return shape_from_hf_config(cached)
    if model.path in BUILT_IN:
        return BUILT_IN[model.path]
    raise ConfigError(f"model.path={model.path}: no config.json in a local directory or the "
                      f"Hugging Face cache, and not one of the built-in shapes "
                      f"({', '.join(BUILT_IN)}); the memory plan needs the model's shape")
