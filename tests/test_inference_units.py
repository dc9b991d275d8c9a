"""Fast unit tests of the inference layer: no model is loaded here."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from localcode_lsp.config import load_config
from localcode_lsp.inference import BackendError, create_backend
from localcode_lsp.inference.backend import Completion, merge_identical
from localcode_lsp.inference.fim import (
    TEMPLATES,
    detect_fim_template,
    fim_support_description,
    resolve_fim_template,
    strip_sentinels,
)
from localcode_lsp.inference.grammar import (
    GrammarParseError,
    choice_grammar,
    option_labels,
    parse_intent,
    parse_line_range,
    parse_python_function,
    parse_yes_no,
    python_function_grammar,
)
from localcode_lsp.inference.model_files import GGUFMetadata
from localcode_lsp.inference.openai_backend import OpenAIBackend
from localcode_lsp.inference.stops import (
    BraceBlockStop,
    LoopStop,
    PythonBlockStop,
    loop_cut,
    python_block_indent,
    stop_rule_for,
)
from localcode_lsp.pipeline.completion import (
    ContextSection,
    build_prefix_prompt,
    split_at,
    starts_block_body,
)


def metadata(arch: str, *tokens: str) -> GGUFMetadata:
    return GGUFMetadata(path=Path(f"/models/{arch}.gguf"), size_bytes=0, version=3,
                        values={"general.architecture": arch, "general.name": arch},
                        tokens={t: i for i, t in enumerate(tokens)})


FAMILIES = {
    "qwen": metadata("qwen2", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
                     "<|endoftext|>", "<|file_sep|>"),
    "starcoder": metadata("starcoder2", "<fim_prefix>", "<fim_suffix>", "<fim_middle>",
                          "<|endoftext|>"),
    "codellama": metadata("llama", "<s>", "</s>", "<PRE>", "<SUF>", "<MID>", "<EOT>"),
    "deepseek": metadata("llama", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
    "codegemma": metadata("gemma", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
                          "<|file_separator|>"),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_fim_template_detected_from_vocabulary(family: str) -> None:
    template = detect_fim_template(FAMILIES[family])
    assert template is not None and template.name == family
    prompt = template.format("def f(", "):\n")
    assert prompt.index(template.prefix_token) < prompt.index("def f(") < prompt.index(
        template.suffix_token) < prompt.index(template.middle_token)
    assert prompt.endswith(template.middle_token)
    assert family in fim_support_description(FAMILIES[family])


def test_no_fim_tokens_means_prefix_completion() -> None:
    gemma = metadata("gemma3", "<bos>", "<eos>", "<start_of_turn>")
    assert detect_fim_template(gemma) is None
    assert "prefix completion only" in fim_support_description(gemma)


def test_forced_template_missing_tokens_names_both() -> None:
    with pytest.raises(BackendError) as info:
        resolve_fim_template(FAMILIES["starcoder"], "qwen")
    message = str(info.value)
    assert "qwen" in message and "<|fim_prefix|>" in message and "starcoder2.gguf" in message
    assert resolve_fim_template(FAMILIES["qwen"], "none") is None
    with pytest.raises(BackendError, match="unknown FIM template"):
        resolve_fim_template(FAMILIES["qwen"], "nonsense")


def test_sentinels_never_leak() -> None:
    template = TEMPLATES["qwen"]
    assert strip_sentinels("x = 1\n<|endoftext|>junk", template.sentinels) == "x = 1\n"
    assert strip_sentinels("a<|fim_middle|>b", template.sentinels) == "a"
    assert strip_sentinels("clean", template.sentinels) == "clean"


def test_python_block_stop_cuts_at_dedent() -> None:
    prefix = "import os\n\n\ndef f(x):\n    "
    indent = python_block_indent(prefix)
    assert indent == 0
    rule = PythonBlockStop(indent, "    ")
    body = "y = x + 1\n    if y:\n        return y\n\n    return 0\n"
    text = body + "\n\ndef g():\n    pass\n"
    assert rule.cut(body) is None
    assert rule.cut(text) == len(body) + 2
    assert rule.trim(text) == body
    # lines inside a docstring or brackets do not close the block
    tricky = 'doc = """\nleft edge\n"""\n    call(1,\n2)\n    return 1\nx = 2\n'
    assert rule.trim(tricky) == tricky[: tricky.index("x = 2")]
    nested = "def outer():\n    def inner():\n        "
    assert python_block_indent(nested) == 4
    assert python_block_indent("x = 1\ny = ") is None


def test_loop_stop_keeps_the_first_copy_of_a_repeated_block() -> None:
    head = "total = 0\n"
    one = "    total += 1\n"
    assert loop_cut(head + one * 3) is None  # three identical lines can be real code
    assert loop_cut(head + one * 4 + "    tot") == len(head + one)
    pair = "    x = f(x)\n    y = g(y)\n"
    assert loop_cut(head + pair * 2) is None
    assert loop_cut(head + pair * 3) == len(head + pair)
    assert loop_cut("\n\n\n\n\n") is None  # blank lines are not a loop
    assert loop_cut("a\nb\nc\nd\n") is None
    # wrapped around the structural rule: the dedent still wins when it comes first
    rule = stop_rule_for("python", "def f(x):\n    ")
    assert isinstance(rule, LoopStop)
    looping = "y = 1\n" + "    y += 1\n" * 6
    assert rule.trim(looping) == "y = 1\n    y += 1\n"
    closed = "return x\n\ndef g():\n    pass\n"
    assert rule.trim(closed).rstrip() == "return x"
    assert LoopStop().cut("print(1)\n" * 5) == len("print(1)\n")


def test_body_stop_cuts_a_loop_inside_the_body() -> None:
    from localcode_lsp.pipeline.target import BodyStop, trim_body

    text = "    n = 0\n" + "    n = n + 1\n" * 8
    cut = BodyStop(0).cut(text)
    assert text[:cut] == "    n = 0\n    n = n + 1\n"
    assert trim_body(text, 0, "    ") == "    n = 0\n    n = n + 1\n"


def test_brace_block_stop() -> None:
    rule = BraceBlockStop()
    text = 'if (a) { b("}"); }\n  return 1;\n}\nint other() {}'
    cut = rule.cut(text)
    assert cut is not None and text[cut] == "}" and "other" not in text[:cut]
    single = BraceBlockStop(single_block=True)
    fn = "int f() {\n  return 1; // }\n}\nint g() {}"
    assert fn[: single.cut(fn)].endswith("}") and "g()" not in fn[: single.cut(fn)]
    assert rule.cut("x = 1; /* { */ y();") is None


def test_grammar_parsers() -> None:
    assert parse_intent(" fix ") == "fix"
    with pytest.raises(GrammarParseError):
        parse_intent("refactor")
    assert parse_yes_no("yes") is True and parse_yes_no("no") is False
    assert parse_line_range("L30-L12") == (12, 30)
    with pytest.raises(GrammarParseError):
        parse_line_range("12-30")
    labels = option_labels(3)
    assert labels == ["A", "B", "C"]
    assert choice_grammar(labels).count("|") == 2
    with pytest.raises(ValueError):
        choice_grammar(["A", "A"])
    envelope = parse_python_function("@cache\ndef add(a, b) -> int:\n    return a + b\n", "add")
    assert envelope.valid_python and envelope.body_lines == 1
    with pytest.raises(GrammarParseError):
        parse_python_function("def other(a):\n    pass\n", "add")
    with pytest.raises(GrammarParseError):
        parse_python_function("def add(a):\n    pass\nprint(1)\n", "add")
    cut = parse_python_function("def add(a):\n    return a\n    x = (", "add",
                                complete_lines_only=True)
    assert cut.text == "def add(a):\n    return a\n"
    with pytest.raises(ValueError):
        python_function_grammar("not an identifier")


def test_merge_identical_counts_votes() -> None:
    merged = merge_identical([Completion("a\n"), Completion("a"), Completion("b")])
    assert [(c.text.rstrip(), c.votes) for c in merged] == [("a", 2), ("b", 1)]


def test_missing_and_corrupt_model_files(tmp_path: Path, isolated_home: Path) -> None:
    (tmp_path / "localcode.toml").write_text('[model]\npath = "models/none.gguf"\n')
    config = load_config(tmp_path)
    with pytest.raises(BackendError, match="none.gguf"):
        create_backend(config, tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "none.gguf").write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(BackendError, match="not a GGUF"):
        create_backend(config, tmp_path)
    (tmp_path / "models" / "none.gguf").write_bytes(b"GGUF\x03\0\0\0" + b"\xff" * 40)
    backend = create_backend(config, tmp_path)  # cheap: nothing is read past the magic yet
    with pytest.raises(BackendError, match="corrupt GGUF header"):
        backend.tokenize("x")


def test_unreachable_server_names_url() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = OpenAIBackend(f"http://127.0.0.1:{port}", timeout=2.0)
    with pytest.raises(BackendError, match=f"127.0.0.1:{port}"):
        backend.complete("hello", max_tokens=4)
    with pytest.raises(BackendError, match="http"):
        OpenAIBackend("ftp://example")


def test_split_and_block_detection() -> None:
    text = "def f():\n    \n\nx = 1\n"
    prefix, suffix = split_at(text, 1, 4)
    assert prefix == "def f():\n    " and suffix == "\n\nx = 1\n"
    assert starts_block_body(prefix, suffix, "python")
    prefix, suffix = split_at(text, 3, 3)
    assert not starts_block_body(prefix, suffix, "python")
    assert starts_block_body("int f() {\n  ", "\n}", "c")
    with pytest.raises(ValueError):
        split_at(text, 1, 99)
    with pytest.raises(ValueError):
        split_at(text, 40, 0)


def test_prefix_prompt_is_stable_first() -> None:
    def count(text: str) -> int:
        return len(text.split())

    head = "import os\nimport sys\n\n"
    body = "".join(f"value_{i} = {i}\n" for i in range(400))
    prompt, truncated = build_prefix_prompt(head + body + "x = ", [], count, budget=300)
    assert truncated and prompt.startswith(head) and prompt.endswith("x = ")
    assert count(prompt) <= 300
    # one more character typed at the cursor: everything before the cursor line is unchanged
    prompt2, _ = build_prefix_prompt(head + body + "x = o", [], count, budget=300)
    assert prompt2 == prompt + "o"
    with_section, _ = build_prefix_prompt("y = ", [ContextSection("signatures", "def g(): ...")],
                                          count, budget=300)
    assert with_section.startswith("# signatures\n") and with_section.endswith("y = ")
