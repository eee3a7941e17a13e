"""[adapter_gather] Under FSDP a LoRA policy's sync to vLLM and its checkpoint gather the
adapter's bytes and nothing of the frozen base (2 gloo ranks, adapter_gather_worker.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.learner.adapter_gather_worker import CONFIG, LORA

WORKER = Path(__file__).with_name("adapter_gather_worker.py")
REPO = Path(__file__).resolve().parents[2]


def _adapter_bytes() -> int:
    """float32 bytes of r x in (A) + out x r (B) per targeted projection and layer, from the
    Qwen2 shapes: q and o are hidden x hidden, k and v hidden x kv_heads * head_dim, gate and up
    hidden -> intermediate, down intermediate -> hidden."""
    hidden, inter, r = CONFIG["hidden_size"], CONFIG["intermediate_size"], LORA["r"]
    kv = CONFIG["num_key_value_heads"] * hidden // CONFIG["num_attention_heads"]
    shapes = {"q_proj": (hidden, hidden), "k_proj": (hidden, kv), "v_proj": (hidden, kv),
              "o_proj": (hidden, hidden), "gate_proj": (hidden, inter),
              "up_proj": (hidden, inter), "down_proj": (inter, hidden)}
    per_layer = sum(r * (shapes[m][0] + shapes[m][1]) for m in LORA["target_modules"])
    return 4 * per_layer * CONFIG["num_hidden_layers"]


def test_adapter_gather_lora_sync_and_checkpoint_gather_only_the_adapter(tmp_path):
    out = tmp_path / "gathered.json"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
         str(WORKER), str(out), str(tmp_path / "run")],
        env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    gathered = json.loads(out.read_text())
    assert _adapter_bytes() == 4 * 1664  # 2 layers x (q 256 + v 192 + down 384) parameters
    assert gathered["sync"] == _adapter_bytes()
    assert gathered["checkpoint"] == _adapter_bytes()
    assert "adapter_model.safetensors" in gathered["adapter_files"]
    assert "adapter_model.safetensors" in gathered["checkpoint_files"]
