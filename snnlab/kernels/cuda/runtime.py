"""CuPy plumbing: availability check, module loading, zero-copy views, launches.

CuPy is imported inside functions only, so ``import snnlab.kernels.cuda``
works without it. Kernels run on torch's current CUDA stream of the tensors'
device (``cupy.cuda.ExternalStream`` over ``torch.cuda.current_stream()``),
so they order correctly with the surrounding torch work without any
synchronisation. Tensors reach CuPy through DLPack (no copy); ``bfloat16``,
which CuPy has no dtype for, travels as an ``int16`` view of the same memory.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from .source_files import DTYPE_SUFFIXES, source

__all__ = [
    "CuPyUnavailableError",
    "cupy_installed",
    "from_cupy",
    "is_available",
    "launch",
    "require_cupy",
    "to_cupy",
]

#: Threads per block of the element-wise neuron kernels.
THREADS = 256
#: Upper bound on blocks per launch (the kernels loop with a grid stride beyond it).
MAX_BLOCKS = 1 << 20

_INSTALL_HINT = (
    "install CuPy built for your CUDA version: `pip install cupy-cuda13x` (CUDA 13) or "
    "`pip install cupy-cuda12x` (CUDA 12); `pip install snnlab[cuda]` installs the default one"
)

_MODULES: dict[str, Any] = {}
_FUNCTIONS: dict[tuple[str, str, int], Any] = {}


class CuPyUnavailableError(ImportError, RuntimeError):
    """``backend='cupy'`` was asked for where CuPy or a CUDA GPU is missing.

    Both an ``ImportError`` (the package is missing) and a ``RuntimeError``.
    """


def cupy_installed() -> bool:
    """Whether CuPy can be imported (without importing it)."""
    if "cupy" in sys.modules:
        return sys.modules["cupy"] is not None
    try:
        return importlib.util.find_spec("cupy") is not None
    except (ImportError, ValueError):
        return False


def is_available() -> bool:
    """Whether the CuPy kernels can run here: CuPy importable and a CUDA GPU visible to torch.

    Does not import CuPy.
    """
    return cupy_installed() and torch.cuda.is_available()


def require_cupy() -> Any:
    """Return the ``cupy`` module, or raise :class:`CuPyUnavailableError` saying what is missing."""
    try:
        import cupy
    except ImportError as exc:
        raise CuPyUnavailableError(
            f"backend='cupy' needs CuPy, which is not installed ({exc}); {_INSTALL_HINT}"
        ) from exc
    if not torch.cuda.is_available():
        raise CuPyUnavailableError(
            "backend='cupy' needs a CUDA GPU, but torch.cuda.is_available() is False here "
            "(no GPU, no driver, or a CPU-only torch build); use backend='torch' (or 'cpu') instead"
        )
    return cupy


def check_cuda_tensor(name: str, tensor: torch.Tensor) -> None:
    """``tensor`` must be a CUDA tensor of a dtype the kernels have (float16/32/64, bfloat16)."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.device.type != "cuda":
        raise ValueError(
            f"{name} must be a CUDA tensor for the CuPy kernels, got device {tensor.device}; "
            "move the input and the module to a CUDA device, or use backend='torch'"
        )
    if tensor.dtype not in DTYPE_SUFFIXES:
        allowed = ", ".join(str(d) for d in DTYPE_SUFFIXES)
        raise TypeError(f"{name} must have one of the dtypes {allowed}, got {tensor.dtype}")


def cuda_include_dir(cupy: Any = None) -> str | None:
    """A CUDA include directory holding ``cuda_fp16.h`` (from CuPy, ``$CUDA_PATH``/``$CUDA_HOME``
    or the ``nvcc`` on the PATH), or ``None``."""
    roots: list[str | None] = []
    if cupy is not None:
        get_path = getattr(cupy.cuda, "get_cuda_path", None)
        roots.append(get_path() if get_path is not None else None)
    roots += [os.environ.get("CUDA_PATH"), os.environ.get("CUDA_HOME")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        roots.append(str(Path(nvcc).resolve().parent.parent))
    roots.append("/usr/local/cuda")
    for root in roots:
        if root and Path(root, "include", "cuda_fp16.h").is_file():
            return str(Path(root, "include"))
    return None


def _module(cupy: Any, name: str) -> Any:
    """Compile source ``name`` once per process (CuPy also caches the binary on disk).

    With the CUDA headers when an include directory is found; otherwise, or if
    that fails, with ``-DSNN_NO_CUDA_FP16_HEADERS`` (the source then defines
    the 16-bit types itself).
    """
    module = _MODULES.get(name)
    if module is not None:
        return module
    options = ("--std=c++14",)
    include = cuda_include_dir(cupy)
    if include is not None:
        try:
            module = cupy.RawModule(code=source(name), options=(*options, f"-I{include}"))
            module.compile()
        except Exception:  # any NVRTC failure with the headers: retry without them
            module = None
    if module is None:
        module = cupy.RawModule(code=source(name), options=(*options, "-DSNN_NO_CUDA_FP16_HEADERS"))
        module.compile()
    _MODULES[name] = module
    return module


def get_function(file_name: str, kernel: str, dtype: torch.dtype, device_index: int) -> Any:
    """The compiled entry point ``<kernel>_<suffix of dtype>`` of source ``file_name`` on a device."""
    cupy = require_cupy()
    key = (file_name, f"{kernel}_{DTYPE_SUFFIXES[dtype]}", device_index)
    fn = _FUNCTIONS.get(key)
    if fn is None:
        with cupy.cuda.Device(device_index):
            fn = _module(cupy, file_name).get_function(key[1])
        _FUNCTIONS[key] = fn
    return fn


def to_cupy(tensor: torch.Tensor) -> Any:
    """A CuPy array sharing ``tensor``'s memory (DLPack, no copy); ``bfloat16`` is viewed as ``int16``."""
    cupy = require_cupy()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.view(torch.int16)
    return cupy.from_dlpack(tensor.detach())


def from_cupy(array: Any) -> torch.Tensor:
    """A torch tensor sharing ``array``'s memory (DLPack, no copy)."""
    return torch.from_dlpack(array)


def _arg(cupy: Any, value: Any) -> Any:
    import numpy

    if value is None:
        return numpy.uint64(0)  # a null pointer
    if isinstance(value, torch.Tensor):
        return to_cupy(value)
    if isinstance(value, bool):
        return numpy.int64(int(value))
    if isinstance(value, int):
        return numpy.int64(value)
    if isinstance(value, float):
        return numpy.float64(value)
    return value


def launch(
    file_name: str,
    kernel: str,
    dtype: torch.dtype,
    device: torch.device,
    grid: tuple[int, ...],
    block: tuple[int, ...],
    args: tuple[Any, ...],
) -> None:
    """Launch ``<kernel>_<dtype suffix>`` on torch's current stream of ``device``.

    ``args``: tensors (passed by pointer; ``None`` is a null pointer), Python
    ints (``long long``) and floats (``double``), in the kernel's order.
    """
    cupy = require_cupy()
    index = device.index if device.index is not None else torch.cuda.current_device()
    fn = get_function(file_name, kernel, dtype, index)
    with cupy.cuda.Device(index):
        stream = cupy.cuda.ExternalStream(torch.cuda.current_stream(index).cuda_stream, index)
        with stream:
            fn(grid, block, tuple(_arg(cupy, a) for a in args))


def blocks_for(n: int, threads: int = THREADS) -> int:
    """Blocks for ``n`` elements at ``threads`` per block (at least 1, at most :data:`MAX_BLOCKS`)."""
    return max(1, min((n + threads - 1) // threads, MAX_BLOCKS))
