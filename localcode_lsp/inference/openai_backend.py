"""`OpenAIBackend`: the same protocol over an OpenAI-compatible HTTP server (stdlib urllib).

Works with llama.cpp's `llama-server`, `python -m llama_cpp.server`, vLLM and Ollama:

- every request names the model (`[model] model`; when unset, the server's only or first model
  from `GET /v1/models`) and carries `Authorization: Bearer <key>` when `[model] api_key_env`
  names an environment variable (vLLM `--api-key`, a proxy in front of Ollama);
- completions: `POST /v1/completions`, streamed (server-sent events) so that cancellation and
  structural stop rules act between tokens, as in process; cancelling closes the stream, which
  makes the server stop generating;
- chat: `POST /v1/chat/completions`, streamed the same way; a prefill is sent as a final partial
  assistant message to servers that continue it (llama-server, vLLM with
  `continue_final_message`, Ollama), else appended to the last user turn and stripped from the
  answer;
- FIM: `POST /infill` on llama-server; `suffix` on `/v1/completions` for Ollama; otherwise
  (vLLM rejects `suffix`) the FIM template (`[model] fim_template`, or guessed from the model
  name), otherwise prefix completion;
- grammars: sent as `grammar` (llama.cpp servers accept GBNF; others ignore the field, so the
  parsers in `grammar.py` stay the judge);
- tokens: `POST /tokenize` (llama-server) or `/extras/tokenize` (llama_cpp.server); a server with
  neither gets an estimate of one token per 3.5 characters (`tokenizer_exact` says which).

`evaluated_tokens` is not reported by these servers: it is set to `prompt_tokens` (an upper
bound). An unreachable server is a BackendError naming the URL, after `request_timeout`.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from ..cancel import CancelToken
from .backend import (
    BackendError,
    ChatMessage,
    Completion,
    ModelInfo,
    ModelKind,
    StopRule,
    code_first_grammar,
    merge_identical,
)
from .fim import TEMPLATES, FimTemplate, strip_sentinels, suffix_stop_line

CHARS_PER_TOKEN_ESTIMATE = 3.5

# `owned_by` of `GET /v1/models` says which server this is (each sets its own constant)
SERVER_KINDS = {"llamacpp": "llama-server", "vllm": "vllm", "library": "ollama",
                "ollama": "ollama", "me": "llama_cpp.server"}
# servers that continue a final assistant message instead of closing it (a real prefill)
PREFILL_SERVERS = ("llama-server", "vllm", "ollama")


def api_key_from_env(variable: str) -> str:
    """The API key held by environment variable `variable` ("" when no variable is named).
    BackendError names the variable when it is named but unset or empty."""
    if not variable:
        return ""
    key = os.environ.get(variable, "").strip()
    if not key:
        raise BackendError(
            f"[model] api_key_env = {variable!r}, but the environment variable {variable} is "
            f"not set: export {variable}=<your key> before starting localcode (the key itself "
            "never goes into localcode.toml)")
    return key


class OpenAIBackend:
    """A model behind an OpenAI-compatible HTTP endpoint."""

    def __init__(self, url: str, *, timeout: float = 60.0, model: str = "",
                 context_length: int = 8192, fim_template: FimTemplate | None = None,
                 api_key: str = "") -> None:
        if not url.startswith(("http://", "https://")):
            raise BackendError(f"model.url must start with http:// or https://: {url!r}")
        self.url = url.rstrip("/")
        if self.url.endswith("/v1"):
            self.url = self.url[:-3]
        self.timeout = timeout
        self.model = model
        self.context_length = context_length
        self._api_key = api_key
        self._fim_template = fim_template
        self._lock = threading.Lock()
        self._tokenize_path: str | None = None  # discovered on first use; "" = none
        self._has_infill: bool | None = None
        self._accepts_suffix: bool | None = None  # `suffix` on /v1/completions
        self._models: list[dict[str, Any]] | None = None  # GET /v1/models, once
        self._chat_template: str | None = None  # llama-server's /props, once
        host = urllib.parse.urlsplit(self.url).hostname or ""
        # a model server on this machine is never reached through an HTTP proxy
        loopback = host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
        self._opener = urllib.request.build_opener(
            *([urllib.request.ProxyHandler({})] if loopback else []))

    # --- HTTP ------------------------------------------------------------------------------

    def _request(self, path: str, payload: dict[str, Any] | None = None, *,
                 stream: bool = False) -> Any:
        url = self.url + path
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(
            url, data=data, method="POST" if data is not None else "GET", headers=headers)
        try:
            response = self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", errors="replace")[:300]
            raise _HTTPStatus(exc.code, f"{url} answered HTTP {exc.code}: {body}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackendError(f"model server {url} is unreachable "
                               f"(timeout {self.timeout:g}s): {reason}") from exc
        if stream:
            return response
        with response:
            try:
                return json.loads(response.read().decode("utf-8"))
            except (ValueError, OSError) as exc:
                raise BackendError(f"{url} did not answer JSON: {exc}") from exc

    @staticmethod
    def _events(response: Any) -> Iterator[dict[str, Any]]:
        """Server-sent events of a streamed completion."""
        for raw in response:
            line = raw.decode("utf-8", errors="replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                yield json.loads(data)
            except ValueError:
                continue

    # --- model info and tokens -------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        """`GET /v1/models` (`data` entries with `id`, `owned_by`); BackendError when the server
        cannot be reached, refuses the key (HTTP 401/403) or answers something else."""
        if self._models is None:
            answer = self._request("/v1/models")
            data = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(data, list):
                raise BackendError(f"{self.url}/v1/models did not list models: {answer!r:.200}")
            self._models = [entry for entry in data if isinstance(entry, dict)]
        return self._models

    def _model_entry(self) -> dict[str, Any] | None:
        try:
            models = self.list_models()
        except BackendError:
            return None
        for entry in models:
            if self.model and entry.get("id") == self.model:
                return entry
        return models[0] if models and not self.model else None

    @property
    def model_name(self) -> str:
        """The model every request names: `[model] model`, else the server's first model."""
        if self.model:
            return self.model
        entry = self._model_entry()
        return str(entry.get("id", "")) if entry else ""

    @property
    def server_kind(self) -> str:
        """"llama-server", "vllm", "ollama", "llama_cpp.server" or "openai" (unknown)."""
        try:
            models = self.list_models()
        except BackendError:
            return "openai"
        for entry in models:
            kind = SERVER_KINDS.get(str(entry.get("owned_by", "")).lower())
            if kind:
                return kind
        return "openai"

    def _with_model(self, payload: dict[str, Any]) -> dict[str, Any]:
        name = self.model_name
        if name:
            payload["model"] = name
        return payload

    def _template_for_remote(self) -> FimTemplate | None:
        """The FIM template given, else one guessed from the model name (the weights are not
        ours to read); None = prefix completion."""
        if self._fim_template is not None:
            return self._fim_template
        name = self.model_name.lower()
        for key, guess in (("qwen", "qwen"), ("codegemma", "codegemma"),
                           ("starcoder", "starcoder"), ("codellama", "codellama"),
                           ("deepseek-coder", "deepseek")):
            if key in name:
                return TEMPLATES[guess]
        return None

    @property
    def info(self) -> ModelInfo:
        name = self.model_name or self.url
        kind = self.server_kind
        template = self._template_for_remote()
        fim = "infill" if self._has_infill or kind == "llama-server" else (
            "suffix" if kind == "ollama" else (template.name if template else None))
        return ModelInfo(name=name, family="remote", context_length=self.context_length,
                         fim=fim, path=self.url, kind=self._model_kind(kind, name),
                         chat_template=(self._chat_template or "") if kind == "llama-server" else "")

    def _model_kind(self, server: str, name: str) -> ModelKind:
        """"instruct" when the server serves chat with the model's own template: llama-server
        when `/props` has a chat template, vLLM and Ollama (their chat endpoints apply the
        model's template); for other servers the model name decides."""
        if server == "llama-server":
            if self._chat_template is None:
                try:
                    props = self._request("/props")
                    self._chat_template = str(props.get("chat_template") or "") \
                        if isinstance(props, dict) else ""
                except BackendError:
                    self._chat_template = ""
            return "instruct" if self._chat_template else "base"
        if server in ("vllm", "ollama"):
            return "instruct"
        lowered = name.lower()
        return "instruct" if "instruct" in lowered or "chat" in lowered else "base"

    @property
    def tokenizer_exact(self) -> bool:
        self._discover_tokenizer()
        return bool(self._tokenize_path)

    def _tokenize_payload(self, path: str, text: str) -> dict[str, Any]:
        if path == "/extras/tokenize":  # llama_cpp.server
            return {"input": text}
        if self.server_kind == "vllm":  # vLLM: {"model", "prompt"}
            return self._with_model({"prompt": text})
        return {"content": text}  # llama-server

    def _discover_tokenizer(self) -> None:
        if self._tokenize_path is not None:
            return
        kind = self.server_kind
        paths = {"ollama": (), "vllm": ("/tokenize",), "llama-server": ("/tokenize",),
                 "llama_cpp.server": ("/extras/tokenize",)}.get(
            kind, ("/tokenize", "/extras/tokenize"))
        for path in paths:
            try:
                answer = self._request(path, self._tokenize_payload(path, "a"))
            except _HTTPStatus:
                continue
            if isinstance(answer, dict) and isinstance(answer.get("tokens"), list):
                self._tokenize_path = path
                return
        self._tokenize_path = ""

    def tokenize(self, text: str) -> list[int]:
        """Server-side token ids; raises BackendError when the server cannot tokenize."""
        self._discover_tokenizer()
        if not self._tokenize_path:
            raise BackendError(f"{self.url} has no tokenize endpoint (/tokenize, /extras/tokenize)")
        answer = self._request(self._tokenize_path,
                               self._tokenize_payload(self._tokenize_path, text))
        return [t if isinstance(t, int) else t.get("id", 0) for t in answer["tokens"]]

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        self._discover_tokenizer()
        if self._tokenize_path:
            return len(self.tokenize(text))
        return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE)

    # --- generation ------------------------------------------------------------------------

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 256,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        seed: int | None = None,
        grammar: str | None = None,
        cancel: CancelToken | None = None,
        stop_rule: StopRule | None = None,
        code_first: str = "",
    ) -> Completion:
        return self._completion(prompt, None, max_tokens=max_tokens, stop=stop,
                                temperature=temperature, seed=seed, grammar=grammar,
                                cancel=cancel, stop_rule=stop_rule, code_first=code_first)

    def _completion(self, prompt: str, suffix: str | None, *, max_tokens: int,
                    stop: Sequence[str], temperature: float, seed: int | None,
                    grammar: str | None, cancel: CancelToken | None,
                    stop_rule: StopRule | None, code_first: str) -> Completion:
        """`POST /v1/completions`, with `suffix` when given (Ollama's FIM)."""
        if code_first and not grammar:
            grammar = code_first_grammar(code_first)  # no logits hook over HTTP
        payload = self._with_model({"prompt": prompt, "max_tokens": max_tokens,
                                    "temperature": temperature, "stream": True})
        if stop:
            payload["stop"] = list(stop)
        if seed is not None:
            payload["seed"] = seed
        if grammar:
            payload["grammar"] = grammar
        if suffix is not None:
            payload["suffix"] = suffix
        result = self._stream("/v1/completions", payload, cancel, stop_rule,
                              lambda event: (event.get("choices") or [{}])[0])
        prompt_tokens = self.count_tokens(prompt)
        return replace(result, prompt_tokens=prompt_tokens, evaluated_tokens=prompt_tokens,
                       seed=seed, grammar_incomplete=bool(grammar) and result.finish_reason
                       == "length")

    def _stream(self, path: str, payload: dict[str, Any], cancel: CancelToken | None,
                stop_rule: StopRule | None, pick: Any) -> Completion:
        started = time.monotonic()
        if cancel is not None and cancel.cancelled:
            return Completion("", "cancelled")
        with self._lock:
            response = self._request(path, payload, stream=True)
            text, finish, tokens = "", "length", 0
            try:
                for event in self._events(response):
                    choice = pick(event)
                    piece = choice.get("text", choice.get("content", "")) or ""
                    if not piece and isinstance(choice.get("delta"), dict):  # chat chunks
                        piece = choice["delta"].get("content") or ""
                    if piece:
                        text += piece
                        tokens += 1
                    reason = choice.get("finish_reason") or choice.get("stop_type")
                    if reason and reason != "none":
                        finish = "stop" if reason in ("stop", "eos", "word") else reason
                    elif choice.get("stop") is True:
                        finish = "stop"
                    if cancel is not None and cancel.cancelled:
                        finish = "cancelled"
                        break
                    if stop_rule is not None and piece:
                        cut = stop_rule.cut(text)
                        if cut is not None:
                            text, finish = text[:cut], "structure"
                            break
            except OSError as exc:
                raise BackendError(f"{self.url}{path}: connection lost: {exc}") from exc
            finally:
                response.close()
        return Completion(text, finish, completion_tokens=tokens,
                          seconds=time.monotonic() - started)

    def fim(
        self,
        prefix: str,
        suffix: str,
        *,
        max_tokens: int = 128,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        seed: int | None = None,
        cancel: CancelToken | None = None,
        stop_rule: StopRule | None = None,
        code_first: str = "",
    ) -> Completion:
        """`/infill` on llama-server (or any server that has it), `suffix` on Ollama, else the
        FIM template, else prefix completion."""
        kind = self.server_kind
        if self._has_infill is not False and kind in ("llama-server", "openai"):
            payload = self._with_model({"input_prefix": prefix, "input_suffix": suffix,
                                        "n_predict": max_tokens, "temperature": temperature,
                                        "stream": True})
            if stop:
                payload["stop"] = list(stop)
            if seed is not None:
                payload["seed"] = seed
            if code_first:
                payload["grammar"] = code_first_grammar(code_first)
            try:
                result = self._stream("/infill", payload, cancel, stop_rule, lambda e: e)
                self._has_infill = True
                tokens = self.count_tokens(prefix) + self.count_tokens(suffix)
                return replace(result, prompt_tokens=tokens, evaluated_tokens=tokens, seed=seed)
            except _HTTPStatus as exc:
                if exc.status not in (404, 405, 501):
                    raise
                self._has_infill = False
        stops = list(stop)
        if kind in ("ollama", "vllm") and self._accepts_suffix is not False:
            # Ollama renders `suffix` with the model's FIM template; vLLM answers 400
            # "suffix is not currently supported", and is asked once
            try:
                result = self._completion(prefix, suffix, max_tokens=max_tokens, stop=stops,
                                          temperature=temperature, seed=seed, grammar=None,
                                          cancel=cancel, stop_rule=stop_rule,
                                          code_first=code_first)
                self._accepts_suffix = True
                return result
            except _HTTPStatus as exc:
                if exc.status not in (400, 422, 501) or "suffix" not in str(exc).lower():
                    raise
                self._accepts_suffix = False
        template = self._template_for_remote()
        if template is None:
            line = suffix_stop_line(suffix)
            if line:
                stops.append("\n" + line)
            return self.complete(prefix, max_tokens=max_tokens, stop=stops,
                                 temperature=temperature, seed=seed, cancel=cancel,
                                 stop_rule=stop_rule, code_first=code_first)
        result = self.complete(template.format(prefix, suffix), max_tokens=max_tokens,
                               stop=stops + template.stop_strings(), temperature=temperature,
                               seed=seed, cancel=cancel, stop_rule=stop_rule,
                               code_first=code_first)
        return replace(result, text=strip_sentinels(result.text, template.sentinels))

    def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 256,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        seed: int | None = None,
        grammar: str | None = None,
        cancel: CancelToken | None = None,
        stop_rule: StopRule | None = None,
        prefill: str = "",
    ) -> Completion:
        """`POST /v1/chat/completions`, streamed; the server applies the model's chat template.
        The returned text excludes `prefill`; `stop_rule` sees prefill + answer, as in process."""
        if not messages:
            raise BackendError("chat needs at least one message")
        turns: list[dict[str, str]] = [{"role": m["role"], "content": m["content"]}
                                       for m in messages]
        payload = self._with_model({"max_tokens": max_tokens, "temperature": temperature,
                                    "stream": True})
        kind = self.server_kind
        folded = False
        if prefill and kind in PREFILL_SERVERS:
            turns.append({"role": "assistant", "content": prefill})
            if kind == "vllm":  # vLLM closes a final assistant turn unless told to continue it
                payload["continue_final_message"] = True
                payload["add_generation_prompt"] = False
        elif prefill:
            # no real prefill: ask for it in the last user turn, strip it from the answer
            folded = True
            last_user = max((i for i, t in enumerate(turns) if t["role"] == "user"), default=-1)
            if last_user < 0:
                turns.append({"role": "user", "content": ""})
                last_user = len(turns) - 1
            turns[last_user]["content"] += (
                f"\n\nBegin your answer with exactly this text:\n{prefill}")
        payload["messages"] = turns
        if stop:
            payload["stop"] = list(stop)
        if seed is not None:
            payload["seed"] = seed
        if grammar:
            payload["grammar"] = grammar  # llama.cpp servers; the others ignore it
        rule = _PrefilledRule(stop_rule, prefill) if stop_rule is not None and prefill \
            and not folded else stop_rule
        result = self._stream("/v1/chat/completions", payload, cancel, rule,
                              lambda event: (event.get("choices") or [{}])[0])
        text = result.text
        if folded:
            stripped = text.lstrip()
            if stripped.startswith(prefill.strip()):
                text = stripped[len(prefill.strip()):].lstrip(" ")
                if prefill.endswith("\n"):
                    text = text.removeprefix("\n")
            if stop_rule is not None:
                cut = stop_rule.cut(prefill + text)
                if cut is not None:
                    text = (prefill + text)[:cut][len(prefill):]
        prompt_tokens = self.count_tokens("".join(t["content"] for t in turns))
        return replace(result, text=text, prompt_tokens=prompt_tokens,
                       evaluated_tokens=prompt_tokens, seed=seed,
                       grammar_incomplete=bool(grammar) and result.finish_reason == "length")

    def candidates(
        self,
        prompt: str,
        n: int,
        *,
        max_tokens: int = 256,
        stop: Sequence[str] = (),
        temperature: float = 0.6,
        grammar: str | None = None,
        cancel: CancelToken | None = None,
        stop_rule: StopRule | None = None,
        seed: int = 0,
        code_first: str = "",
        suffix: str | None = None,
    ) -> list[Completion]:
        """`n` sequential samples (servers with a prompt cache reuse the prefix); merged.
        With `suffix`, each is an infill (`fim`; a grammar does not apply there)."""
        results = []
        for index in range(n):
            if cancel is not None and cancel.cancelled:
                break
            if suffix is not None and not grammar:
                result = self.fim(prompt, suffix, max_tokens=max_tokens, stop=stop,
                                  temperature=temperature, seed=seed + index, cancel=cancel,
                                  stop_rule=stop_rule, code_first=code_first)
            else:
                result = self.complete(prompt, max_tokens=max_tokens, stop=stop,
                                       temperature=temperature, seed=seed + index,
                                       grammar=grammar, cancel=cancel, stop_rule=stop_rule,
                                       code_first=code_first)
            if result.finish_reason == "cancelled":
                break
            results.append(result)
        return merge_identical(results)


class _HTTPStatus(BackendError):
    """The server answered, with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _PrefilledRule:
    """A stop rule that judges the prefill plus the answer, cutting within the answer."""

    def __init__(self, rule: StopRule, prefill: str) -> None:
        self._rule = rule
        self._prefill = prefill

    def cut(self, text: str) -> int | None:
        cut = self._rule.cut(self._prefill + text)
        return None if cut is None else max(0, cut - len(self._prefill))
