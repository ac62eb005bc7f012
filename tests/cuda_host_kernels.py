"""The CUDA sources snnlab ships, compiled for the host CPU and launched block by block.

A test helper: it lets the kernels' own code (indexing, tiles, grid-stride loops,
``__syncthreads`` barriers, shared memory, the 16-bit conversions) run on CPU
tensors where no GPU is available, so the tests can compare it with the torch
references. It is no substitute for a GPU run: it checks what the code computes,
not the GPU's memory model, its streams or its speed.

How a source is built (``g++``, C++14, no fused multiply-add, as the kernels
round every operation on their own): a header forced in front of it defines the
CUDA keywords for the host (``__global__`` / ``__device__`` are plain functions,
``__shared__`` is ``static``, ``threadIdx`` is thread-local, ``blockIdx`` /
``blockDim`` / ``gridDim`` are globals, the ``__*_rn`` intrinsics are the plain
operations), and an include directory holds stand-ins for ``cuda_fp16.h`` /
``cuda_bf16.h`` (IEEE binary16 through GCC's ``_Float16``; bfloat16 as the top
half of a float, rounded to nearest even).

How a launch runs: the blocks one after the other; the threads of a block one
after the other where the source has no barrier, else each on its own Python
thread (the ``ctypes`` call releases the GIL), meeting at ``__syncthreads``,
which waits for all threads of the block that have not returned. A barrier that
some threads never reach times out and fails the launch (``BarrierError``).

Out-of-bounds accesses: each tensor argument is copied for the launch between
two inaccessible pages, its bytes ending at the second one (or, every other
launch, starting right after the first), and copied back after it; a kernel
that reads or writes past either end of an argument stops the process with a
segmentation fault (pytest's fault handler names the test). Tensors that share
their first byte and size are one copy; arguments that overlap otherwise run
unguarded.
"""

from __future__ import annotations

import ctypes
import itertools
import mmap
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

from snnlab.kernels.cuda import source_files

#: Forced in front of every source: the CUDA keywords and intrinsics on the host.
_PRELUDE = r"""
#pragma once
#include <math.h>
#include <string.h>
struct snn_host_dim3 { unsigned int x, y, z; };
extern thread_local snn_host_dim3 threadIdx;
extern snn_host_dim3 blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) alignas(n)
void __syncthreads(void);
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline float __uint_as_float(unsigned int u) { float f; memcpy(&f, &u, 4); return f; }
static inline unsigned int __float_as_uint(float f) { unsigned int u; memcpy(&u, &f, 4); return u; }
"""

_FP16 = r"""
#pragma once
#ifndef __FLT16_MAX__
#error "the host stand-in for cuda_fp16.h needs a compiler with _Float16"
#endif
struct __half { unsigned short x; };
static inline float __half2float(const __half h) { _Float16 v; memcpy(&v, &h.x, 2); return (float)v; }
static inline __half __float2half_rn(const float f) {
    const _Float16 v = (_Float16)f;  /* IEEE binary16, round to nearest even */
    __half h;
    memcpy(&h.x, &v, 2);
    return h;
}
static inline unsigned short __half_as_ushort(const __half h) { return h.x; }
static inline __half __ushort_as_half(const unsigned short u) { __half h; h.x = u; return h; }
"""

_BF16 = r"""
#pragma once
struct __nv_bfloat16 { unsigned short x; };
static inline float __bfloat162float(const __nv_bfloat16 b) {
    return __uint_as_float(((unsigned int)b.x) << 16);
}
static inline __nv_bfloat16 __float2bfloat16_rn(const float f) {
    unsigned int bits = __float_as_uint(f);
    __nv_bfloat16 b;
    if ((bits & 0x7fffffffu) > 0x7f800000u) {  /* NaN: keep it a quiet NaN */
        b.x = (unsigned short)((bits >> 16) | 0x0040u);
        return b;
    }
    const unsigned int lsb = (bits >> 16) & 1u;  /* round to nearest, ties to even */
    b.x = (unsigned short)((bits + 0x7fffu + lsb) >> 16);
    return b;
}
static inline unsigned short __bfloat16_as_ushort(const __nv_bfloat16 b) { return b.x; }
static inline __nv_bfloat16 __ushort_as_bfloat16(const unsigned short u) {
    __nv_bfloat16 b;
    b.x = u;
    return b;
}
"""

#: The launch state and the block barrier, compiled with every source.
_RUNTIME = r"""
#include <chrono>
#include <condition_variable>
#include <mutex>
thread_local snn_host_dim3 threadIdx;
snn_host_dim3 blockIdx, blockDim, gridDim;
static std::mutex barrier_mutex;
static std::condition_variable barrier_cv;
static long barrier_expected = 0, barrier_arrived = 0, barrier_generation = 0, barrier_failed = 0;

static void release_locked(void) {
    barrier_arrived = 0;
    ++barrier_generation;
    barrier_cv.notify_all();
}

void __syncthreads(void) {
    std::unique_lock<std::mutex> lock(barrier_mutex);
    if (barrier_failed) return;
    const long generation = barrier_generation;
    if (++barrier_arrived >= barrier_expected) {
        release_locked();
        return;
    }
    const bool met = barrier_cv.wait_for(lock, std::chrono::seconds(20),
                                         [generation] { return barrier_generation != generation; });
    if (!met) {  /* some thread of the block never arrives: fail the launch, let everyone go */
        barrier_failed = 1;
        release_locked();
    }
}

extern "C" void snn_host_grid(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz) {
    gridDim = {gx, gy, gz};
    blockDim = {bx, by, bz};
}

extern "C" void snn_host_block(unsigned x, unsigned y, unsigned z, long threads) {
    blockIdx = {x, y, z};
    std::lock_guard<std::mutex> lock(barrier_mutex);
    barrier_expected = threads;
    barrier_arrived = 0;
    barrier_failed = 0;
}

extern "C" void snn_host_thread(unsigned x, unsigned y, unsigned z) { threadIdx = {x, y, z}; }

/* A thread of the block returned: the barriers stop waiting for it. */
extern "C" void snn_host_thread_done(void) {
    std::lock_guard<std::mutex> lock(barrier_mutex);
    --barrier_expected;
    if (barrier_arrived > 0 && barrier_arrived >= barrier_expected) release_locked();
}

extern "C" long snn_host_barrier_failed(void) { return barrier_failed; }
"""

_SIGNATURE = re.compile(r'extern "C" __global__ void (\w+)##suffix\((.*?)\)\s*\{', re.S)
_CTYPES = {"ptr": ctypes.c_void_p, "int": ctypes.c_longlong, "float": ctypes.c_double}


class BarrierError(AssertionError):
    """The threads of a block did not all reach the same ``__syncthreads``."""


def signatures(text: str) -> dict[str, list[tuple[str, str]]]:
    """``{kernel: [(kind, name)]}`` of the ``extern "C"`` entry points of one source; kind is
    ``'ptr'``, ``'int'`` (``long long``) or ``'float'`` (``double``)."""
    out = {}
    for name, params in _SIGNATURE.findall(text):
        items = []
        for param in params.replace("\\", " ").split(","):
            words = param.split()
            kind = "ptr" if "*" in param else ("int" if words[0] == "long" else "float")
            if kind == "float" and words[0] != "double":
                raise ValueError(f"{name}: parameter {param.strip()!r} is not a pointer, long long or double")
            items.append((kind, words[-1]))
        out[name.rstrip("_")] = items
    return out


def compiler() -> str | None:
    """The host C++ compiler used here (``g++``), or ``None``."""
    return shutil.which("g++")


_PAGE = mmap.PAGESIZE
_PROT_NONE = 0
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_LIBC.mprotect.restype = ctypes.c_int


class _Guarded:
    """A copy of a tensor's bytes between two inaccessible pages (see the module doc)."""

    def __init__(self, tensor: torch.Tensor, at_end: bool) -> None:
        self.tensor = tensor
        self.nbytes = tensor.numel() * tensor.element_size()
        body = -(-self.nbytes // _PAGE) * _PAGE
        self.map = mmap.mmap(-1, body + 2 * _PAGE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self._anchor = ctypes.c_char.from_buffer(self.map)
        base = ctypes.addressof(self._anchor)
        for page in (base, base + _PAGE + body):
            if _LIBC.mprotect(page, _PAGE, _PROT_NONE) != 0:
                raise OSError(ctypes.get_errno(), "mprotect failed")
        self.address = base + _PAGE + (body - self.nbytes if at_end else 0)
        ctypes.memmove(self.address, tensor.data_ptr(), self.nbytes)

    def close(self) -> None:
        """Copy the bytes back into the tensor and free the pages."""
        ctypes.memmove(self.tensor.data_ptr(), self.address, self.nbytes)
        del self._anchor
        self.map.close()


def _guard(tensors: list[torch.Tensor], at_end: bool) -> dict[tuple[int, int], _Guarded] | None:
    """Guarded copies by ``(first byte, size)``; ``None`` if two tensors overlap otherwise."""
    spans = {(t.data_ptr(), t.numel() * t.element_size()): t for t in tensors}
    ordered = sorted(spans)
    for (a, n), (b, _) in itertools.pairwise(ordered):
        if b < a + n:
            return None
    return {span: _Guarded(t, at_end) for span, t in spans.items()}


class HostKernels:
    """Every shipped CUDA source, built for the host; :meth:`launch` has the signature of
    :func:`snnlab.kernels.cuda.runtime.launch` and runs CPU tensors."""

    def __init__(self, build_dir: Path) -> None:
        cxx = compiler()
        if cxx is None:
            raise FileNotFoundError("g++ is not installed")
        inc = build_dir / "include"
        inc.mkdir(parents=True, exist_ok=True)
        (inc / "snn_host_prelude.h").write_text(_PRELUDE)
        (inc / "cuda_fp16.h").write_text(_FP16)
        (inc / "cuda_bf16.h").write_text(_BF16)
        runtime = build_dir / "snn_host_runtime.cpp"
        runtime.write_text(_RUNTIME)
        self.libs: dict[str, ctypes.CDLL] = {}
        self.signatures: dict[str, list[tuple[str, str]]] = {}
        self.barriers: dict[str, bool] = {}
        self.launch_count = 0  # (every other launch guards the other end of its arguments)
        for name, text in source_files.sources().items():
            src = build_dir / f"{Path(name).stem}_host.cpp"
            src.write_text(text)
            lib = build_dir / f"lib{Path(name).stem}_host.so"
            cmd = [
                cxx, "-std=c++14", "-O1", "-fPIC", "-shared", "-pthread", "-ffp-contract=off",
                "-Wno-unknown-pragmas", f"-I{inc}", "-include", "snn_host_prelude.h",
                str(src), str(runtime), "-o", str(lib),
            ]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"host build of {name} failed:\n{done.stderr[-4000:]}")
            self.libs[name] = ctypes.CDLL(str(lib))
            self.signatures.update(signatures(text))
            self.barriers[name] = "__syncthreads" in text

    def function(self, file_name: str, kernel: str, dtype: torch.dtype) -> Any:
        """The host build of ``<kernel>_<dtype suffix>``, with its argument types set."""
        fn = getattr(self.libs[file_name], f"{kernel}_{source_files.DTYPE_SUFFIXES[dtype]}")
        fn.argtypes = [_CTYPES[kind] for kind, _ in self.signatures[kernel]]
        fn.restype = None
        return fn

    def launch(
        self,
        file_name: str,
        kernel: str,
        dtype: torch.dtype,
        device: torch.device,
        grid: tuple[int, ...],
        block: tuple[int, ...],
        args: tuple[Any, ...],
    ) -> None:
        """Run one launch on the CPU: tensors by pointer (``None``: null), ints, floats."""
        kinds = [kind for kind, _ in self.signatures[kernel]]
        if len(args) != len(kinds):
            raise TypeError(f"{kernel}: {len(args)} arguments for {len(kinds)} parameters")
        tensors = []
        for kind, value in zip(kinds, args):
            if kind == "ptr" and value is not None:
                if value.device.type != "cpu" or not value.is_contiguous():
                    raise ValueError(f"{kernel}: pointer arguments must be contiguous CPU tensors")
                tensors.append(value)
        guarded = _guard(tensors, at_end=self.launch_count % 2 == 0)
        try:
            values = []
            for kind, value in zip(kinds, args):
                if kind != "ptr":
                    values.append(value)
                elif value is None:
                    values.append(None)
                else:
                    span = (value.data_ptr(), value.numel() * value.element_size())
                    values.append(value.data_ptr() if guarded is None else guarded[span].address)
            self._run(file_name, kernel, dtype, grid, block, values)
        finally:
            for copy in (guarded or {}).values():
                copy.close()

    def _run(
        self,
        file_name: str,
        kernel: str,
        dtype: torch.dtype,
        grid: tuple[int, ...],
        block: tuple[int, ...],
        values: list[Any],
    ) -> None:
        fn = self.function(file_name, kernel, dtype)
        lib = self.libs[file_name]
        g = (*grid, 1, 1)[:3]
        b = (*block, 1, 1)[:3]
        self.launch_count += 1
        lib.snn_host_grid(*g, *b)
        threads = [(x, y, z) for z in range(b[2]) for y in range(b[1]) for x in range(b[0])]
        for bz in range(g[2]):
            for by in range(g[1]):
                for bx in range(g[0]):
                    lib.snn_host_block(bx, by, bz, ctypes.c_long(len(threads)))
                    if self.barriers[file_name]:
                        self._concurrent(lib, fn, values, threads)
                        if lib.snn_host_barrier_failed():
                            where = f"block ({bx}, {by}, {bz})"
                            raise BarrierError(f"{kernel}: {where} met a barrier that not all threads reach")
                    else:
                        for t in threads:
                            lib.snn_host_thread(*t)
                            fn(*values)
                            lib.snn_host_thread_done()

    @staticmethod
    def _concurrent(lib: ctypes.CDLL, fn: Any, values: list[Any], threads: list[tuple[int, ...]]) -> None:
        errors: list[BaseException] = []

        def run(t: tuple[int, int, int]) -> None:
            try:
                lib.snn_host_thread(*t)
                fn(*values)
            except BaseException as exc:  # reported after the block
                errors.append(exc)
            finally:
                lib.snn_host_thread_done()

        workers = [threading.Thread(target=run, args=(t,)) for t in threads]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        if errors:
            raise errors[0]


_BUILT: dict[str, HostKernels] = {}


def host_kernels() -> HostKernels:
    """The sources built once per process (in a temporary directory)."""
    built = _BUILT.get("kernels")
    if built is None:
        built = _BUILT["kernels"] = HostKernels(Path(tempfile.mkdtemp(prefix="snnlab-cuda-host-")))
    return built
