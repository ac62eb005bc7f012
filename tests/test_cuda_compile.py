"""Every CUDA source snnlab ships compiles with nvcc for sm_80 and sm_90.

Each source is written out exactly as ``cupy.RawModule`` receives it (all
dtype instantiations are explicit ``extern "C"`` entry points inside it) and
compiled to a cubin, one nvcc call per architecture for all sources; the
cubin must define every entry point the Python side launches. Both variants
of the sources are compiled: with the CUDA 16-bit headers and with
``-DSNN_NO_CUDA_FP16_HEADERS`` (the runtime's fallback, which defines the
16-bit types and conversions itself). Skipped only
when ``nvcc`` is not on the PATH (or at ``$CUDA_HOME/bin``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from snnlab.kernels.cuda import source_files as cuda_sources


def _nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and Path(root, "bin", "nvcc").is_file():
            return str(Path(root, "bin", "nvcc"))
    return None


NVCC = _nvcc()
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")


def test_every_source_is_listed_and_shipped():
    package_dir = Path(cuda_sources.__file__).parent
    on_disk = sorted(p.name for p in package_dir.glob("*.cu"))
    assert on_disk == sorted(cuda_sources.KERNELS)
    for name, text in cuda_sources.sources().items():
        declared = {n.rstrip("_") for n in re.findall(r'extern "C" __global__ void (\w+)##suffix', text)}
        assert declared == set(cuda_sources.KERNELS[name]), name
        for suffix in cuda_sources.DTYPE_SUFFIXES.values():
            assert re.search(rf"^SNN_\w+_KERNELS\({suffix}, ", text, re.M), (name, suffix)


def test_unknown_source_name_is_refused():
    with pytest.raises(ValueError, match="name"):
        cuda_sources.source("missing.cu")
    with pytest.raises(ValueError, match="name"):
        cuda_sources.entry_points("missing.cu")


@needs_nvcc
@pytest.mark.parametrize(
    ("arch", "headers"),
    [("sm_80", True), ("sm_90", True), ("sm_80", False)],
    ids=["sm_80", "sm_90", "sm_80-own-16-bit-types"],
)
def test_sources_compile_with_nvcc(arch, headers, tmp_path):
    files = []
    for name, text in cuda_sources.sources().items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        files.append(str(path))
    out_dir = tmp_path / arch
    out_dir.mkdir()
    cmd = [NVCC, "-cubin", f"-arch={arch}", "-std=c++14", "-Werror", "all-warnings", *files]
    cmd += ["-odir", str(out_dir)]
    if not headers:  # the variant the runtime falls back to when NVRTC cannot find the CUDA headers
        cmd.append("-DSNN_NO_CUDA_FP16_HEADERS")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, f"nvcc failed:\n{result.stdout}\n{result.stderr}"
    for name in cuda_sources.KERNELS:
        cubin = (out_dir / name).with_suffix(".cubin").read_bytes()
        for entry in cuda_sources.entry_points(name):
            assert f".text.{entry}\x00".encode() in cubin, f"{entry} missing from {name} ({arch})"
