"""The machine a result was made on, and the instruction set its kernels are held to.

The same code, seeds and thread settings give other numbers on another CPU when the kernels
pick other instructions (AVX2 vs AVX-512 vs AMX change the order and width of floating-point
sums): the stored tiny ``grpo 0`` of Table 2 (43.6 %, an AVX2 machine) re-ran to 39.3 % on an
AVX-512/AMX Xeon. A result therefore names its CPU and its kernels' instruction sets, and the
CPU profiles can pin the kernels to AVX2 (:data:`AVX2_PIN`), where each library lets one:

- torch's own kernels (ATen's vectorised CPU ops): ``ATEN_CPU_CAPABILITY=avx2``, read at start-up
  and visible in ``torch.backends.cpu.get_cpu_capability()``;
- MKL (torch's float32 matmul on CPU): ``MKL_CBWR=AVX2`` (MKL's conditional numerical
  reproducibility: the results of its AVX2 code path on every *Intel* CPU with AVX2; on other
  vendors' CPUs MKL ignores it and runs its ``AUTO`` branch, per the oneMKL developer guide,
  "Getting Started with Conditional Numerical Reproducibility") and
  ``MKL_ENABLE_INSTRUCTIONS=AVX2``. So the pins reproduce between AMD machines and between
  Intel machines, not from one vendor to the other (measured: :data:`VENDOR_NOTE`);
- oneDNN (torch's and the copy linked into vLLM's ``_C``, whose ``onednn_mm`` does vLLM's dense
  layers on CPU): ``ONEDNN_MAX_CPU_ISA=AVX2``;
- vLLM's CPU kernels choose their library (``_C`` with AVX-512 BF16, ``_C_AVX512``,
  ``_C_AVX2``) and attention kernels (``amx``, ``vec``) from ``torch.cpu.get_capabilities()``,
  which reads the CPU itself and no variable: :func:`pin_vllm_kernels` makes that function
  report no AVX-512 and no AMX (``RLVR_VLLM_CPU_ISA=avx2``), before vLLM loads.

:func:`describe` names all of it in one line, the line results carry as ``Machine: ...``.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

# The environment that pins every kernel library to AVX2 (the CPU profiles run under it).
AVX2_PIN = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
            "ONEDNN_MAX_CPU_ISA": "AVX2", "RLVR_VLLM_CPU_ISA": "avx2"}
ISA_ENV = tuple(AVX2_PIN)
# The instruction-set extensions that change which kernels run, in the order they are named.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
_VLLM_LIBRARY = re.compile(r"vllm/(_C(?:_AVX2|_AVX512)?)\.abi3\.so")
# The capability keys torch.cpu.get_capabilities() reports that AVX2 machines lack.
_ABOVE_AVX2 = re.compile(r"^(avx512|amx)")


def cpu_model(cpuinfo: str | None = None) -> str:
    """The ``model name`` of /proc/cpuinfo (``platform.processor()`` where there is none)."""
    text = cpuinfo if cpuinfo is not None else _read("/proc/cpuinfo")
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match[1].strip() if match else (platform.processor() or platform.machine())


def cpu_flags(cpuinfo: str | None = None) -> list[str]:
    """The :data:`ISA_FLAGS` the CPU has, from the ``flags`` line of /proc/cpuinfo."""
    text = cpuinfo if cpuinfo is not None else _read("/proc/cpuinfo")
    match = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    have = set(match[1].split()) if match else set()
    return [flag for flag in ISA_FLAGS if flag in have]


def vllm_kernel_library(maps: str | None = None) -> str | None:
    """Which of vLLM's CPU kernel libraries this process loaded (``_C_AVX2``, ...), read from
    /proc/self/maps; None when vLLM's kernels are not loaded."""
    text = maps if maps is not None else _read("/proc/self/maps")
    found = _VLLM_LIBRARY.search(text)
    return found[1] if found else None


def torch_capability() -> str | None:
    """``torch.backends.cpu.get_cpu_capability()`` (``AVX2``, ``AVX512``), None without torch."""
    try:
        import torch
    except ImportError:
        return None
    return torch.backends.cpu.get_cpu_capability()


def describe(cpuinfo: str | None = None, maps: str | None = None,
             env: dict[str, str] | None = None) -> str:
    """``<CPU model> (x86_64: avx2 fma avx512f ...); kernels: torch AVX2, MKL_CBWR=AVX2,
    ONEDNN_MAX_CPU_ISA=AVX2, vLLM _C_AVX2``: the CPU, its instruction sets, and what the kernel
    libraries were held to (``unpinned`` where no variable was set; vLLM ``not loaded`` in a
    process that never loaded it)."""
    env = os.environ if env is None else env
    flags = " ".join(cpu_flags(cpuinfo)) or "no AVX2"
    kernels = [f"torch {torch_capability() or 'absent'}"]
    for name in ("MKL_CBWR", "ONEDNN_MAX_CPU_ISA"):
        kernels.append(f"{name}={env[name]}" if name in env else f"{name} unpinned")
    kernels.append(f"vLLM {vllm_kernel_library(maps) or 'not loaded'}")
    return f"{cpu_model(cpuinfo)} ({platform.machine()}: {flags}); kernels: {', '.join(kernels)}"


def pin_vllm_kernels() -> bool:
    """Under ``RLVR_VLLM_CPU_ISA=avx2``, make ``torch.cpu.get_capabilities()`` report no
    AVX-512 or AMX extension, so vLLM loads ``_C_AVX2`` and its ``vec`` attention kernels
    (vllm/platforms/cpu.py ``import_kernels``, vllm/v1/attention/backends/cpu_attn.py). Must run
    before vLLM loads its kernels; returns whether it pinned. Raises when vLLM's kernels are
    already loaded with another library, which no later call can change."""
    if os.environ.get("RLVR_VLLM_CPU_ISA", "").lower() != "avx2":
        return False
    loaded = vllm_kernel_library()
    if loaded not in (None, "_C_AVX2"):
        raise RuntimeError(f"vLLM already loaded {loaded}; RLVR_VLLM_CPU_ISA=avx2 must be set "
                           "before vLLM is imported")
    import torch.cpu

    original = torch.cpu.get_capabilities
    if getattr(original, "pinned_to_avx2", False):
        return True

    def avx2_capabilities() -> dict:
        return {key: value for key, value in original().items() if not _ABOVE_AVX2.match(key)}

    avx2_capabilities.pinned_to_avx2 = True  # type: ignore[attr-defined]
    torch.cpu.get_capabilities = avx2_capabilities
    return True


def same_hardware(stored: str, here: str) -> bool:
    """Whether two :func:`describe` lines name the same CPU model, instruction sets and kernel
    pins (the vLLM library is compared only when both name one)."""
    def key(line: str) -> tuple[str, str]:
        parts = line.split("; kernels: ", 1)
        kernels = parts[1] if len(parts) > 1 else ""
        kernels = re.sub(r",? ?vLLM not loaded", "", kernels)
        return parts[0], kernels

    a, b = key(stored), key(here)
    if a[0] != b[0]:
        return False
    vllm_a = re.search(r"vLLM (\S+)", a[1])
    vllm_b = re.search(r"vLLM (\S+)", b[1])
    strip = re.compile(r",? ?vLLM \S+")
    if strip.sub("", a[1]) != strip.sub("", b[1]):
        return False
    return vllm_a is None or vllm_b is None or vllm_a[1] == vllm_b[1]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:  # not Linux
        return ""



def cpu_vendor(line: str) -> str | None:
    """``AMD`` or ``Intel`` from the CPU model a :func:`describe` line starts with."""
    model = line.split(" (", 1)[0]
    return next((v for v in ("AMD", "Intel") if v in model), None)


# Why a result made on one vendor's CPU does not re-derive on the other's under the pins: the
# stored flip_test/tiny ent_increase 1 and the tiny Table 2 base row (AMD EPYC) re-ran on an
# Intel Xeon with AMX to other numbers already at the base model's evaluation.
VENDOR_NOTE = ("MKL_CBWR=AVX2 holds MKL to its AVX2 branch on Intel CPUs only, AMD CPUs run "
               "its AUTO branch, so results under the pins differ between the two vendors")


def check_report(differences: list[str], stored: str | None, here: str) -> str:
    """What ``reproduce.py --check`` prints: ``MATCH`` (naming both machines when they differ:
    the result re-derived on other hardware), or ``MISMATCH`` and the differences,
    its first line saying ``the hardware differs`` with both machines when the stored file
    (``stored``: its ``Machine:`` line) was made on another CPU or under other kernel pins (and
    :data:`VENDOR_NOTE` when the two CPUs are of two vendors, both under the MKL pin), or that it
    names no machine."""
    if not differences:
        if stored is not None and not same_hardware(stored, here):
            return f"MATCH on other hardware: stored on {stored}; re-run on {here}"
        return "MATCH"
    head = "MISMATCH"
    if stored is None:
        head += f": the stored file names no machine, so the hardware may differ; here: {here}"
    elif not same_hardware(stored, here):
        head += f": the hardware differs: stored on {stored}; re-run on {here}"
        vendors = {cpu_vendor(stored), cpu_vendor(here)}
        if (len(vendors) == 2 and None not in vendors
                and all("MKL_CBWR=AVX2" in line for line in (stored, here))):
            head += f" ({VENDOR_NOTE})"
    return "\n".join([head, *differences])
