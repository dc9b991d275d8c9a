"""What llama.cpp build is installed (for `doctor`), without loading a model."""

from __future__ import annotations

from dataclasses import dataclass

PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
)
PORTABLE_HINT = (
    "if llama.cpp crashes (segfault in libggml-cpu) rebuild it portable: "
    f'CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" pip install --force-reinstall --no-cache-dir '
    "llama-cpp-python==0.3.36"
)


@dataclass(frozen=True)
class LlamaBuild:
    installed: bool
    version: str = ""
    system_info: str = ""
    error: str = ""
    gpu_offload: bool = False  # built with a GPU backend (CUDA, Metal, Vulkan, ...)

    @property
    def native_risk(self) -> bool:
        """AVX-512/AMX kernels come from a -march=native build, the one seen to segfault here."""
        info = self.system_info.upper()
        return "AVX512 = 1" in info or "AMX" in info and "AMX_INT8 = 1" in info


def llama_build() -> LlamaBuild:
    """Import llama_cpp (cheap: no model) and read its version and CPU feature line."""
    try:
        import llama_cpp
    except Exception as exc:  # ImportError, or a broken shared library
        return LlamaBuild(installed=False, error=f"{type(exc).__name__}: {exc}")
    try:
        info = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
    except Exception as exc:  # pragma: no cover - very old bindings
        info = f"unavailable ({exc})"
    try:
        gpu = bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:  # pragma: no cover - very old bindings
        gpu = False
    return LlamaBuild(installed=True, version=getattr(llama_cpp, "__version__", "?"),
                      system_info=info, gpu_offload=gpu)


GPU_BUILD_HINT = (
    "to use a GPU, rebuild llama-cpp-python with its backend: "
    'CMAKE_ARGS="-DGGML_CUDA=on" (NVIDIA) or CMAKE_ARGS="-DGGML_METAL=on" (Apple) '
    "pip install --force-reinstall --no-cache-dir llama-cpp-python==0.3.36"
)


def offloaded_layers(build: LlamaBuild, n_gpu_layers: int, block_count: int) -> tuple[int, str]:
    """How many of the model's `block_count` layers `n_gpu_layers` puts on the GPU with this
    build, and a sentence saying so (a CPU-only build offloads none, whatever is asked)."""
    total = f" of {block_count}" if block_count else ""
    if not build.gpu_offload:
        return 0, (f"none: this llama.cpp build is CPU-only, so n_gpu_layers = {n_gpu_layers} "
                   f"offloads 0{total} layers; everything runs on the CPU")
    if n_gpu_layers == 0:
        return 0, f"none: n_gpu_layers = 0 keeps all{total} layers on the CPU"
    if n_gpu_layers < 0 or (block_count and n_gpu_layers >= block_count):
        count = block_count
        return count, (f"all{total} layers (n_gpu_layers = {n_gpu_layers}), if the GPU has the "
                       "memory")
    return n_gpu_layers, f"{n_gpu_layers}{total} layers (n_gpu_layers = {n_gpu_layers})"
