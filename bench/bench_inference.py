"""Inference benchmark, every catalogue model: throughput through the backend vs raw
llama-cpp-python, and inline completion while typing (cold and warm latency, prompt tokens
recomputed per keystroke, verification time).

Run (under the model lock, nothing else using the cores):

    flock /tmp/localcode-model.lock .venv/bin/python -m bench.bench_inference
    .venv/bin/python -m bench.bench_inference --model /path/a.gguf --model /path/b.gguf

Models: `--model PATH` (repeatable), default the catalogue's three (assembled from their
installed packages). Writes a table to stdout and bench/reports/inference-<date>.{json,png}
(`--out`). Not a test: numbers, not asserts; the goals (1.5B default, 2 cores) are printed next
to them: warm re-request p50 <= 400 ms, <= 5% of prompt tokens recomputed, backend >= 0.95x raw.

Typing: a ~1,300-token module with a function to finish; the cursor goes along one line of its
body as a user types it, one character at a time, and each keystroke asks the inline
completion (`pipeline.completion.complete_at`, the server's code path, verification included).
The first request is cold (another prompt was in the KV cache), the others warm. Each FIM
layout the model supports is measured ("psm": prefix-suffix-middle with the hole at the cursor,
the documented use; "psm-line": the hole opened at the line's start, what localcode uses in
process; see `inference.fim.FimTemplate.format_layout`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/bench_inference.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localcode_lsp.config import Config  # noqa: E402
from localcode_lsp.engine import Engine  # noqa: E402
from localcode_lsp.inference.llama_backend import LlamaCppBackend  # noqa: E402
from localcode_lsp.inference.llama_native import available_cores  # noqa: E402
from localcode_lsp.pipeline.completion import complete_at  # noqa: E402

REPORTS = Path(__file__).resolve().parent / "reports"
N_CTX = 8192
GEN_TOKENS = 128
REPEATS = 3
TYPED_LINE = "    return sum(shape.area() for shape in shapes if shape.width > limit)"
KEYSTROKES = 16  # requests after the cold one (one per typed character)


def source_file() -> str:
    """A realistic module (~1,300 tokens) with a function whose body the user is typing."""
    parts = ['"""Shapes and their areas."""\n\nimport math\nimport os\n'
             "from dataclasses import dataclass\n\n\n"]
    for i in range(14):
        parts.append(
            f"@dataclass\nclass Shape{i}:\n    width: float\n    height: float\n\n"
            f"    def area(self) -> float:\n        return self.width * self.height * {i + 1}\n\n"
            f"    def scaled(self, factor: float) -> 'Shape{i}':\n"
            f"        return Shape{i}(self.width * factor, self.height * factor)\n\n\n")
    parts.append('def total_area(shapes: list, limit: float = 0.0) -> float:\n'
                 '    """Sum of the areas of the shapes wider than `limit`."""\n'
                 "CURSOR\n\n\n"
                 "def main() -> None:\n"
                 "    shapes = [Shape0(1.0, 2.0), Shape1(3.0, 4.0)]\n"
                 "    print(total_area(shapes, 0.5))\n"
                 "    print(os.getcwd(), math.pi)\n\n\n"
                 'if __name__ == "__main__":\n    main()\n')
    return "".join(parts)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


def bench_throughput(model: Path) -> dict:
    """Generation tokens/s: llama_cpp.Llama directly vs LlamaCppBackend.complete (same prompt,
    same sampling, the prompt already in the KV cache on both sides)."""
    from llama_cpp import Llama

    prompt = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
    threads = available_cores()
    started = time.perf_counter()
    raw = Llama(str(model), n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads,
                verbose=False)
    load_s = time.perf_counter() - started
    raw_rates = []
    for seed in range(REPEATS):
        raw.create_completion(prompt, max_tokens=1)
        started = time.perf_counter()
        out = raw.create_completion(prompt, max_tokens=GEN_TOKENS, temperature=0.8, seed=seed)
        raw_rates.append(out["usage"]["completion_tokens"] / (time.perf_counter() - started))
    raw.close()
    backend = LlamaCppBackend(model, context_length=N_CTX)
    backend.load()
    rates = []
    for seed in range(REPEATS):
        backend.complete(prompt, max_tokens=1)
        started = time.perf_counter()
        result = backend.complete(prompt, max_tokens=GEN_TOKENS, temperature=0.8, seed=seed)
        rates.append(result.completion_tokens / (time.perf_counter() - started))
    backend.close()
    raw_tps, backend_tps = statistics.median(raw_rates), statistics.median(rates)
    return {"raw_tokens_per_s": round(raw_tps, 1), "backend_tokens_per_s": round(backend_tps, 1),
            "ratio": round(backend_tps / raw_tps, 3), "load_s": round(load_s, 2),
            "threads": threads}


def bench_typing(backend: LlamaCppBackend, layout: str) -> dict:
    """Inline completion at every keystroke of TYPED_LINE (see the module docstring)."""
    template = source_file()
    start_col = len("    return sum(")  # the user has typed this much when the first request
    with tempfile.TemporaryDirectory(prefix="bench-typing-") as tmp:
        root = Path(tmp)
        (root / "shapes.py").write_text(template.replace("CURSOR", ""))
        engine = Engine(root, config=Config(), backend=backend)
        line = template[: template.index("CURSOR")].count("\n")
        backend.complete("An unrelated prompt that evicts the KV cache.", max_tokens=1)
        requests = []
        for version, column in enumerate(range(start_col, start_col + KEYSTROKES + 1)):
            text = template.replace("CURSOR", TYPED_LINE[:column])
            engine.workspace.open_document("shapes.py", text, version + 1)
            started = time.perf_counter()
            result = complete_at(engine, "shapes.py", line, column, layout=layout)
            elapsed = (time.perf_counter() - started) * 1000
            verification = result.details.get("verification", {})
            requests.append({"column": column, "ms": round(elapsed, 1),
                             "prompt_tokens": result.prompt_tokens,
                             "evaluated": result.evaluated_tokens,
                             "text": result.text, "dropped": result.dropped,
                             "verify_ms": verification.get("ms"),
                             "layout": result.details.get("layout", "")})
        engine.close()
    cold, warm = requests[0], requests[1:]
    warm_ms = [r["ms"] for r in warm]
    shares = [r["evaluated"] / max(1, r["prompt_tokens"]) for r in warm]
    verify_ms = [r["verify_ms"] for r in requests if r["verify_ms"] is not None]
    return {"layout": cold["layout"], "prompt_tokens": cold["prompt_tokens"],
            "cold_ms": cold["ms"], "cold_evaluated": cold["evaluated"],
            "warm_ms_p50": round(statistics.median(warm_ms), 1),
            "warm_ms_p95": round(percentile(warm_ms, 95), 1),
            "warm_recomputed_share_mean": round(statistics.mean(shares), 4),
            "warm_recomputed_share_max": round(max(shares), 4),
            "warm_evaluated_p50": statistics.median(r["evaluated"] for r in warm),
            "verify_ms_p50": round(statistics.median(verify_ms), 2) if verify_ms else None,
            "verify_ms_max": round(max(verify_ms), 2) if verify_ms else None,
            "suggestions_shown": sum(int(bool(r["text"])) for r in requests),
            "requests": requests}


def bench_model(path: Path) -> dict:
    result: dict[str, Any] = {"file": path.name, "bytes": path.stat().st_size}
    result["throughput"] = bench_throughput(path)
    backend = LlamaCppBackend(path, context_length=N_CTX)
    backend.load()
    result["model"] = backend.info.name
    result["fim"] = backend.info.fim
    layouts = ("psm", "psm-line") if backend.info.fim else ("none",)
    result["typing"] = {layout: bench_typing(backend, layout if layout != "none" else "psm")
                        for layout in layouts}
    backend.close()
    return result


def default_models() -> list[Path]:
    """The catalogue's models, assembled from their installed packages."""
    from localcode_lsp.inference.catalogue import catalogue_names, find_model, model_file

    return [model_file(find_model(name)) for name in catalogue_names()]


def table(report: dict) -> str:
    load = report.get("load_average_before", ["?"])[0], report.get("load_average_after", ["?"])[0]
    lines = [f"inference benchmark, {report['cores']} cores, {report['machine']}, load average "
             f"{load[0]} before / {load[1]} after (other processes share the cores)",
             f"{'model':<34} {'raw tok/s':>9} {'backend':>8} {'ratio':>6} {'layout':>6} "
             f"{'prompt':>6} {'cold ms':>8} {'warm p50':>8} {'warm p95':>8} "
             f"{'recomputed':>10} {'verify ms p50/max':>17}"]
    for model in report["models"]:
        t = model["throughput"]
        for index, (layout, typing) in enumerate(model["typing"].items()):
            head = (f"{model['file'][:34]:<34} {t['raw_tokens_per_s']:>9} "
                    f"{t['backend_tokens_per_s']:>8} {t['ratio']:>6}" if index == 0
                    else f"{'':<34} {'':>9} {'':>8} {'':>6}")
            verify = f"{typing['verify_ms_p50']}/{typing['verify_ms_max']}"
            lines.append(f"{head} {layout:>6} {typing['prompt_tokens']:>6} "
                         f"{typing['cold_ms']:>8} {typing['warm_ms_p50']:>8} "
                         f"{typing['warm_ms_p95']:>8} "
                         f"{typing['warm_recomputed_share_mean']:>10.1%} {verify:>17}")
    lines.append("goals (1.5B default, 2 cores): warm p50 <= 400 ms, recomputed <= 5%, "
                 "backend/raw >= 0.95; verification <= 5 ms")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = report["models"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    names = [m["file"].replace(".gguf", "")[:28] for m in models]
    xs = range(len(models))
    raw = [m["throughput"]["raw_tokens_per_s"] for m in models]
    ours = [m["throughput"]["backend_tokens_per_s"] for m in models]
    bars = left.bar([x - 0.2 for x in xs], raw, 0.4, label="raw llama-cpp-python")
    left.bar_label(bars, fontsize=8)
    bars = left.bar([x + 0.2 for x in xs], ours, 0.4, label="localcode backend")
    left.bar_label(bars, fontsize=8)
    left.set_xticks(list(xs), names, fontsize=8)
    left.set_ylabel("generated tokens/s")
    left.set_title("throughput")
    left.legend(fontsize=8)
    labels, cold, p50, p95 = [], [], [], []
    for model, name in zip(models, names, strict=True):
        for layout, typing in model["typing"].items():
            labels.append(f"{name}\n{layout}")
            cold.append(typing["cold_ms"])
            p50.append(typing["warm_ms_p50"])
            p95.append(typing["warm_ms_p95"])
    xs2 = range(len(labels))
    for offset, values, label in ((-0.27, cold, "cold"), (0.0, p50, "warm p50"),
                                  (0.27, p95, "warm p95")):
        bars = right.bar([x + offset for x in xs2], values, 0.27, label=label)
        right.bar_label(bars, labels=[f"{v:.0f}" for v in values], fontsize=7)
    right.axhline(400, color="#a22", linestyle="--", linewidth=1, label="goal: warm p50 400 ms")
    right.set_xticks(list(xs2), labels, fontsize=7)
    right.set_ylabel("ms per inline completion")
    right.set_title("inline completion while typing (one keystroke apart)")
    right.legend(fontsize=8)
    fig.suptitle(f"{report['cores']} cores, {report['machine']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_inference")
    parser.add_argument("--model", action="append", type=Path, default=[],
                        help="a GGUF file (repeatable); default: the catalogue's models")
    parser.add_argument("--out", type=Path, default=REPORTS / (
        f"inference-{datetime.date.today().isoformat()}.json"))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if args.report_only:
        report = json.loads(args.out.read_text())
    else:
        models = args.model or default_models()
        report = {"machine": platform.machine(), "cores": available_cores(),
                  "python": platform.python_version(), "models": [],
                  "load_average_before": os.getloadavg()}
        for model in models:
            print(f"benchmarking {model.name} ...", flush=True)
            report["models"].append(bench_model(model))
        report["load_average_after"] = os.getloadavg()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(table(report))
    plot(report, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
