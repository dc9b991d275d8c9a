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
    return LlamaBuild(installed=True, version=getattr(llama_cpp, "__version__", "?"),
                      system_info=info)
