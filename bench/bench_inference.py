"""Inference benchmark: raw llama-cpp-python vs the backend, FIM cold vs warm, N candidates.

Run (under the model lock, nothing else using the cores):

    flock /tmp/lc/model.lock python -m bench.bench_inference

Prints a table and writes bench/results/inference.json. Not a test: numbers, not asserts.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/bench_inference.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localcode_lsp.inference.llama_backend import LlamaCppBackend, available_cores  # noqa: E402
from localcode_lsp.inference.model_files import tiny_model_path  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "inference.json"
N_CTX = 4096
GEN_TOKENS = 128
REPEATS = 3


def _source_file() -> str:
    """A realistic ~1,000-token Python module to complete in."""
    parts = ["import math\nimport os\nfrom dataclasses import dataclass\n\n\n"]
    for i in range(14):
        parts.append(
            f"@dataclass\nclass Shape{i}:\n    width: float\n    height: float\n\n"
            f"    def area(self) -> float:\n        return self.width * self.height * {i + 1}\n\n"
            f"    def scaled(self, factor: float) -> 'Shape{i}':\n"
            f"        return Shape{i}(self.width * factor, self.height * factor)\n\n\n"
        )
    return "".join(parts)


def bench_raw_vs_backend(model: Path) -> dict:
    """Generation tokens/s: llama_cpp.Llama directly vs LlamaCppBackend.complete."""
    from llama_cpp import Llama

    prompt = "The history of computing began"
    raw = Llama(str(model), n_ctx=N_CTX, n_threads=available_cores(), verbose=False)
    raw_rates = []
    for seed in range(REPEATS):
        raw.create_completion(prompt, max_tokens=1)  # prompt in cache for both sides
        started = time.perf_counter()
        out = raw.create_completion(prompt, max_tokens=GEN_TOKENS, temperature=0.8, seed=seed)
        elapsed = time.perf_counter() - started
        raw_rates.append(out["usage"]["completion_tokens"] / elapsed)
    raw.close()
    backend = LlamaCppBackend(model, context_length=N_CTX)
    backend.load()
    rates = []
    for seed in range(REPEATS):
        backend.complete(prompt, max_tokens=1)
        started = time.perf_counter()
        result = backend.complete(prompt, max_tokens=GEN_TOKENS, temperature=0.8, seed=seed)
        elapsed = time.perf_counter() - started
        rates.append(result.completion_tokens / elapsed)
    backend.close()
    raw_tps, backend_tps = statistics.median(raw_rates), statistics.median(rates)
    return {"raw_tokens_per_s": round(raw_tps, 1), "backend_tokens_per_s": round(backend_tps, 1),
            "ratio": round(backend_tps / raw_tps, 3), "goal": ">= 0.95"}


def bench_fim_edit(backend: LlamaCppBackend) -> dict:
    """A completion request, then the same after a one-character edit at the cursor."""
    source = _source_file()
    prefix = source + "def total_area(shapes):\n    retur"
    suffix = "\n\n\ndef main():\n    print(total_area([]))\n"
    started = time.perf_counter()
    cold = backend.fim(prefix, suffix, max_tokens=16, stop=["\n"])
    cold_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    warm = backend.fim(prefix + "n", suffix, max_tokens=16, stop=["\n"])
    warm_ms = (time.perf_counter() - started) * 1000
    return {"prompt_tokens": warm.prompt_tokens, "cold_ms": round(cold_ms, 1),
            "cold_evaluated": cold.evaluated_tokens, "warm_ms": round(warm_ms, 1),
            "warm_evaluated": warm.evaluated_tokens,
            "warm_evaluated_share": round(warm.evaluated_tokens / warm.prompt_tokens, 4),
            "goal": "warm evaluates <= 5% of the prompt tokens"}


def bench_candidates(backend: LlamaCppBackend) -> dict:
    """N=5 candidates of one prompt vs 5 separate cold calls (different prompts' KV each time)."""
    source = _source_file()
    prompt = source + "def total_area(shapes):\n    "
    other = "# another file\n" + source  # evicts the KV prefix between separate calls
    started = time.perf_counter()
    together = backend.candidates(prompt, 5, max_tokens=32, temperature=0.7, stop=["\n\n"])
    together_s = time.perf_counter() - started
    separate_s = 0.0
    for seed in range(5):
        backend.complete(other, max_tokens=1)
        started = time.perf_counter()
        backend.complete(prompt, max_tokens=32, temperature=0.7, seed=seed, stop=["\n\n"])
        separate_s += time.perf_counter() - started
    return {"prompt_tokens": backend.count_tokens(prompt) + 1,
            "n5_candidates_s": round(together_s, 2), "distinct": len(together),
            "five_separate_cold_calls_s": round(separate_s, 2),
            "wall_ratio": round(together_s / separate_s, 3)}


def main() -> int:
    model = tiny_model_path()
    results: dict = {"model": model.name, "machine": platform.machine(),
                     "cores": available_cores(), "python": platform.python_version()}
    results["throughput"] = bench_raw_vs_backend(model)
    backend = LlamaCppBackend(model, context_length=N_CTX)
    backend.load()
    results["fim_edit"] = bench_fim_edit(backend)
    results["candidates"] = bench_candidates(backend)
    backend.close()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    t, f, c = results["throughput"], results["fim_edit"], results["candidates"]
    rows = [
        ("generation tokens/s, raw llama-cpp-python", f"{t['raw_tokens_per_s']}"),
        ("generation tokens/s, through the backend", f"{t['backend_tokens_per_s']}"),
        ("backend / raw (goal >= 0.95)", f"{t['ratio']}"),
        (f"FIM cold ({f['prompt_tokens']} prompt tokens)",
         f"{f['cold_ms']} ms, {f['cold_evaluated']} evaluated"),
        ("FIM warm after a 1-char edit", f"{f['warm_ms']} ms, {f['warm_evaluated']} evaluated "
                                         f"({f['warm_evaluated_share']:.1%}; goal <= 5%)"),
        ("N=5 candidates, one prompt", f"{c['n5_candidates_s']} s ({c['distinct']} distinct)"),
        ("5 separate cold calls", f"{c['five_separate_cold_calls_s']} s"),
        ("wall ratio (candidates / separate)", f"{c['wall_ratio']}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"inference benchmark: {model.name}, {results['cores']} cores")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
