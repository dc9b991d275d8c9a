"""Fill-in-the-middle prompt templates, chosen from the tokens the model's vocabulary really has.

Detection reads only the GGUF header (`model_files.read_gguf_metadata`), so `doctor` can report FIM
support without loading the model. A model without FIM tokens (the embedded gemma-3-270m) gets
*prefix completion*: the prompt is the prefix alone (so the KV cache of the file head keeps being
reused while the user types) and the suffix steers stopping instead: generation stops when it
starts to reproduce the first non-blank line after the cursor, and `pipeline.completion` drops
suggestions that merely repeat the suffix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .backend import BackendError
from .model_files import GGUFMetadata


@dataclass(frozen=True)
class FimTemplate:
    """How one model family spells prefix / suffix / middle, and what ends its infill."""

    name: str
    prefix_token: str
    suffix_token: str
    middle_token: str
    end_tokens: tuple[str, ...] = ()  # sentinels that end an infill when the model emits them
    spacing: str = ""  # CodeLlama puts a space after <PRE> and before <SUF>/<MID>
    description: str = ""

    @property
    def required_tokens(self) -> tuple[str, str, str]:
        return (self.prefix_token, self.suffix_token, self.middle_token)

    @property
    def sentinels(self) -> tuple[str, ...]:
        """Every template token: none of them may appear in returned text."""
        return self.required_tokens + self.end_tokens

    def format(self, prefix: str, suffix: str) -> str:
        """The PSM prompt: prefix, suffix, then the middle marker the model continues after."""
        s = self.spacing
        return f"{self.prefix_token}{s}{prefix}{s}{self.suffix_token}{suffix}{s}{self.middle_token}"

    def format_layout(self, prefix: str, suffix: str, layout: str = "psm") -> str:
        """The prompt in one of `FIM_LAYOUTS`.

        - "psm": prefix, suffix, middle: the order the models are trained and documented with.
          A keystroke at the cursor changes the prompt before the suffix, so llama.cpp
          re-evaluates the whole suffix on every keystroke.
        - "psm-line": the same order with the hole opened at the start of the cursor's line:
          what the user typed on that line comes after the middle marker, as the beginning of
          the middle the model continues. Typing on a line then changes only the prompt's last
          tokens (the suffix is re-evaluated once per new line, not per keystroke). Trailing
          blanks stay out of the prompt (a forced lone indentation token makes the model's next
          token unnatural): the model writes them, and the caller removes them from the text
          (`line_prefill_blanks`).
        - "spm": suffix, prefix, middle. Qwen2.5-Coder was not trained on it: measured on
          HumanEval infilling it returns nothing or garbage (kept for models that were).
        """
        s = self.spacing
        if layout == "psm":
            return self.format(prefix, suffix)
        if layout == "psm-line":
            cut = prefix.rfind("\n") + 1
            return self.format(prefix[:cut], suffix) + prefix[cut:].rstrip(" \t")
        if layout == "spm":
            return f"{self.suffix_token}{suffix}{s}{self.prefix_token}{s}{prefix}{s}" \
                   f"{self.middle_token}"
        raise ValueError(f"unknown FIM layout {layout!r}; expected one of {', '.join(FIM_LAYOUTS)}")

    @staticmethod
    def line_prefill_blanks(prefix: str) -> str:
        """The blanks at the end of the cursor line that "psm-line" leaves for the model."""
        typed = prefix[prefix.rfind("\n") + 1:]
        return typed[len(typed.rstrip(" \t")):]

    def stop_strings(self) -> list[str]:
        return list(dict.fromkeys(self.sentinels))


# Order matters: the first template whose tokens are all present wins, except that CodeGemma
# (same <|fim_*|> spelling as Qwen) is preferred for Gemma-architecture models.
TEMPLATES: dict[str, FimTemplate] = {
    "qwen": FimTemplate(
        "qwen", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
        ("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>", "<|im_end|>"),
        description="Qwen2.5-Coder <|fim_prefix|> tokens",
    ),
    "codegemma": FimTemplate(
        "codegemma", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
        ("<|file_separator|>", "<end_of_turn>", "<eos>"),
        description="CodeGemma <|fim_prefix|> tokens",
    ),
    "starcoder": FimTemplate(
        "starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>",
        ("<|endoftext|>", "<file_sep>", "<fim_pad>"),
        description="StarCoder2 / Stable Code <fim_prefix> tokens",
    ),
    "codellama": FimTemplate(
        "codellama", "<PRE>", "<SUF>", "<MID>", ("<EOT>",), spacing=" ",
        description="CodeLlama <PRE> <SUF> <MID> tokens",
    ),
    "deepseek": FimTemplate(
        "deepseek", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",
        ("<|EOT|>", "<｜end▁of▁sentence｜>"),
        description="DeepSeek-Coder <｜fim▁begin｜> tokens",
    ),
}

PREFIX_ONLY = "none"  # forced name meaning: never use a FIM template
FIM_LAYOUTS = ("psm", "psm-line", "spm")


def _missing(template: FimTemplate, metadata: GGUFMetadata) -> list[str]:
    return [t for t in template.required_tokens if not metadata.has_token(t)]


def detect_fim_template(metadata: GGUFMetadata) -> FimTemplate | None:
    """The template whose sentinel tokens the vocabulary contains, or None (prefix completion)."""
    order = list(TEMPLATES)
    is_gemma = metadata.architecture.startswith("gemma") or metadata.has_token("<|file_separator|>")
    if is_gemma:
        order.remove("codegemma")
        order.insert(0, "codegemma")
    else:
        order.remove("codegemma")
    for name in order:
        if not _missing(TEMPLATES[name], metadata):
            return TEMPLATES[name]
    return None


def resolve_fim_template(metadata: GGUFMetadata, forced: str = "") -> FimTemplate | None:
    """`forced` = "" (detect), "none" (prefix completion) or a template name.

    A forced template whose tokens are missing from the vocabulary is a BackendError naming the
    template, the missing tokens and the model file.
    """
    if not forced:
        return detect_fim_template(metadata)
    if forced == PREFIX_ONLY:
        return None
    template = TEMPLATES.get(forced)
    if template is None:
        raise BackendError(
            f"unknown FIM template {forced!r}; expected one of {', '.join(TEMPLATES)} or 'none'"
        )
    missing = _missing(template, metadata)
    if missing:
        raise BackendError(
            f"FIM template {forced!r} needs the tokens {', '.join(missing)}, which the vocabulary "
            f"of {metadata.path} ({metadata.name}) does not contain"
        )
    return template


def fim_support_description(metadata: GGUFMetadata, forced: str = "") -> str:
    """One line for `doctor`: "FIM: qwen tokens" or "prefix completion only (no FIM tokens)"."""
    try:
        template = resolve_fim_template(metadata, forced)
    except BackendError as exc:
        return f"FIM: error: {exc}"
    if template is None:
        if forced == PREFIX_ONLY:
            return "prefix completion only (FIM disabled by configuration)"
        return "prefix completion only (no FIM tokens in the vocabulary)"
    return f"FIM: {template.name} tokens ({template.description})"


def strip_sentinels(text: str, sentinels: Iterable[str]) -> str:
    """Cut `text` at the first sentinel (the model meant to stop there) and drop any others."""
    cut = len(text)
    for token in sentinels:
        if token:
            index = text.find(token)
            if index != -1:
                cut = min(cut, index)
    return text[:cut]


def suffix_stop_line(suffix: str, min_length: int = 4) -> str | None:
    """The first non-blank suffix line (stripped) when distinctive enough to stop on."""
    for line in suffix.splitlines():
        stripped = line.strip()
        if stripped:
            return stripped if len(stripped) >= min_length else None
    return None
