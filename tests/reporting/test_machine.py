"""Results name their machine, and ``--check`` says when the stored one was another."""

import torch

from rlvr.reporting import machine, provenance

AVX2_CPU = ("processor\t: 0\nmodel name\t: AMD EPYC 7B12\n"
            "flags\t\t: fpu sse2 avx avx2 fma bmi2\n")
AMX_CPU = ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
           "flags\t\t: fpu avx2 fma avx512f avx512_bf16 amx_tile amx_bf16\n")
MAPS = "7f00-7f10 r-xp 0 08:01 1 /venv/lib/python3.11/site-packages/vllm/_C_AVX2.abi3.so\n"
PINNED = {"MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def test_describe_names_the_cpu_its_instruction_sets_and_the_kernels():
    line = machine.describe(AMX_CPU, MAPS, PINNED)
    assert line.startswith("Intel(R) Xeon(R) Platinum 8480+ (")
    assert ": avx2 fma avx512f avx512_bf16 amx_tile amx_bf16); kernels: torch " in line
    assert line.endswith(", MKL_CBWR=AVX2, ONEDNN_MAX_CPU_ISA=AVX2, vLLM _C_AVX2")
    assert f"torch {torch.backends.cpu.get_cpu_capability()}," in line
    bare = machine.describe(AVX2_CPU, "", {})
    assert ": avx2 fma); kernels:" in bare
    assert bare.endswith("MKL_CBWR unpinned, ONEDNN_MAX_CPU_ISA unpinned, vLLM not loaded")


def test_the_footer_and_png_metadata_name_the_machine(monkeypatch):
    monkeypatch.setattr(machine, "describe", lambda: "CPU X (x86_64: avx2); kernels: torch AVX2")
    line = provenance.footer("python x.py")
    assert line.endswith("Machine: `CPU X (x86_64: avx2); kernels: torch AVX2`")
    assert provenance.stored_machine(f"# {line}\nrow,seed\n") == \
        "CPU X (x86_64: avx2); kernels: torch AVX2"
    assert provenance.png_metadata("python x.py")["Machine"] == \
        "CPU X (x86_64: avx2); kernels: torch AVX2"
    assert provenance.stored_machine("# Commit: `abc`. Command: `python x.py`\n") is None


def test_same_hardware_compares_cpu_flags_and_pins_not_an_unloaded_vllm():
    here = machine.describe(AVX2_CPU, MAPS, PINNED)
    assert machine.same_hardware(here, machine.describe(AVX2_CPU, "", PINNED))
    assert not machine.same_hardware(here, machine.describe(AMX_CPU, MAPS, PINNED))
    assert not machine.same_hardware(here, machine.describe(AVX2_CPU, MAPS, {}))
    other_vllm = MAPS.replace("_C_AVX2", "_C_AVX512")
    assert not machine.same_hardware(here, machine.describe(AVX2_CPU, other_vllm, PINNED))


def test_a_mismatch_on_another_cpu_says_the_hardware_differs():
    stored = machine.describe(AVX2_CPU, MAPS, {})
    here = machine.describe(AMX_CPU, MAPS, {})
    report = machine.check_report(["average: stored 0.4358, re-run 0.3958"], stored, here)
    head, detail = report.splitlines()
    assert head == f"MISMATCH: the hardware differs: stored on {stored}; re-run on {here}"
    assert "AMD EPYC 7B12" in head and "Platinum 8480+" in head
    assert detail == "average: stored 0.4358, re-run 0.3958"
    # same machine: a bare mismatch; no machine stored: said so; no difference: MATCH, naming
    # both machines when they differ (a result re-derived on other hardware)
    assert machine.check_report(["x"], here, here) == "MISMATCH\nx"
    assert "names no machine" in machine.check_report(["x"], None, here).splitlines()[0]
    assert machine.check_report([], here, here) == "MATCH"
    assert machine.check_report([], stored, here) == (
        f"MATCH on other hardware: stored on {stored}; re-run on {here}")


def test_the_vllm_pin_hides_avx512_and_amx_from_the_capability_probe(monkeypatch):
    monkeypatch.setenv("RLVR_VLLM_CPU_ISA", "avx2")
    monkeypatch.setattr(machine, "vllm_kernel_library", lambda maps=None: None)
    fake = {"avx2": True, "avx512_f": True, "avx512_bf16": True, "amx_tile": True, "fma": True}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: fake)
    assert machine.pin_vllm_kernels()
    assert torch.cpu.get_capabilities() == {"avx2": True, "fma": True}
    # what vLLM asks (vllm/platforms/cpu.py import_kernels, cpu_attn.py)
    assert not torch.cpu._is_avx512_supported() and not torch.cpu._is_amx_tile_supported()
    assert torch.cpu._is_avx2_supported()
    monkeypatch.setenv("RLVR_VLLM_CPU_ISA", "")
    assert not machine.pin_vllm_kernels()


def test_the_vllm_pin_refuses_when_another_library_is_loaded(monkeypatch):
    monkeypatch.setenv("RLVR_VLLM_CPU_ISA", "avx2")
    monkeypatch.setattr(machine, "vllm_kernel_library", lambda maps=None: "_C")
    try:
        machine.pin_vllm_kernels()
    except RuntimeError as error:
        assert "already loaded _C" in str(error)
    else:
        raise AssertionError("pinned after vLLM loaded its AVX-512 kernels")


def test_a_pinned_tiny_model_build_is_cached_apart(monkeypatch):
    from rlvr import tiny

    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    assert tiny.isa_suffix() == ""
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "AVX2")
    assert tiny.isa_suffix() == "-isa-avx2"


def test_a_mismatch_between_vendors_under_the_mkl_pin_names_mkls_vendor_branch():
    stored = machine.describe(AVX2_CPU, MAPS, PINNED)
    here = machine.describe(AMX_CPU, MAPS, PINNED)
    assert (machine.cpu_vendor(stored), machine.cpu_vendor(here)) == ("AMD", "Intel")
    head = machine.check_report(["average: stored 0.2267, re-run 0.2175"], stored,
                                here).splitlines()[0]
    assert head == (f"MISMATCH: the hardware differs: stored on {stored}; re-run on {here} "
                    f"({machine.VENDOR_NOTE})")
    # same vendor, or MKL not pinned: no vendor note
    other_amd = machine.describe(AVX2_CPU.replace("7B12", "9B14"), MAPS, PINNED)
    assert machine.VENDOR_NOTE not in machine.check_report(["x"], other_amd, stored)
    unpinned = machine.describe(AVX2_CPU, MAPS, {})
    assert machine.VENDOR_NOTE not in machine.check_report(["x"], unpinned, here)
    assert machine.VENDOR_NOTE not in machine.check_report(["x"], stored,
                                                           machine.describe(AMX_CPU, MAPS, {}))
