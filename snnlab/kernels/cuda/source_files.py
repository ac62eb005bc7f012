"""The CUDA sources shipped with snnlab and the kernels each one defines.

Each ``.cu`` file is self-contained (it includes only ``cuda_fp16.h`` and
``cuda_bf16.h``) and is compiled as one module, at run time by NVRTC through
``cupy.RawModule`` and in the test suite by ``nvcc``. Every templated kernel
is instantiated once per tensor dtype behind an ``extern "C"`` entry point
named ``<kernel>_<suffix>`` (suffixes in :data:`DTYPE_SUFFIXES`).
"""

from __future__ import annotations

from importlib import resources

import torch

#: Entry-point suffix per tensor dtype.
DTYPE_SUFFIXES: dict[torch.dtype, str] = {
    torch.float32: "f32",
    torch.float64: "f64",
    torch.float16: "f16",
    torch.bfloat16: "bf16",
}

#: Kernel base names defined by each source file.
KERNELS: dict[str, tuple[str, ...]] = {
    "neuron.cu": ("snn_neuron_forward", "snn_neuron_backward", "snn_bptt"),
    "plasticity.cu": ("snn_stdp_linear",),
}


def source(name: str) -> str:
    """The text of the shipped CUDA source ``name`` (one of :data:`KERNELS`' keys)."""
    if name not in KERNELS:
        raise ValueError(f"name must be one of the shipped CUDA sources {sorted(KERNELS)}, got {name!r}")
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def sources() -> dict[str, str]:
    """Every shipped CUDA source, ``{file name: text}``."""
    return {name: source(name) for name in KERNELS}


def entry_points(name: str) -> tuple[str, ...]:
    """The ``extern "C"`` kernel names source ``name`` defines (every kernel times every dtype)."""
    if name not in KERNELS:
        raise ValueError(f"name must be one of the shipped CUDA sources {sorted(KERNELS)}, got {name!r}")
    return tuple(f"{kernel}_{suffix}" for kernel in KERNELS[name] for suffix in DTYPE_SUFFIXES.values())
