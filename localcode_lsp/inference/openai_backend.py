"""`OpenAIBackend`: the same protocol over an OpenAI-compatible HTTP server (stdlib urllib).

Works with llama.cpp's `llama-server`, `python -m llama_cpp.server`, vLLM and Ollama:

- completions: `POST /v1/completions`, streamed (server-sent events) so that cancellation and
  structural stop rules act between tokens, as in process;
- FIM: `POST /infill` (llama-server) when the server has it; otherwise the FIM template given
  at construction, otherwise prefix completion;
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
    Completion,
    ModelInfo,
    StopRule,
    code_first_grammar,
    merge_identical,
)
from .fim import FimTemplate, strip_sentinels, suffix_stop_line

CHARS_PER_TOKEN_ESTIMATE = 3.5


class OpenAIBackend:
    """A model behind an OpenAI-compatible HTTP endpoint."""

    def __init__(self, url: str, *, timeout: float = 60.0, model: str = "",
                 context_length: int = 8192, fim_template: FimTemplate | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise BackendError(f"model.url must start with http:// or https://: {url!r}")
        self.url = url.rstrip("/")
        if self.url.endswith("/v1"):
            self.url = self.url[:-3]
        self.timeout = timeout
        self.model = model
        self.context_length = context_length
        self._fim_template = fim_template
        self._lock = threading.Lock()
        self._tokenize_path: str | None = None  # discovered on first use; "" = none
        self._has_infill: bool | None = None
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
        request = urllib.request.Request(
            url, data=data, method="POST" if data is not None else "GET",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
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

    @property
    def info(self) -> ModelInfo:
        name = self.model
        if not name:
            try:
                models = self._request("/v1/models")
                name = models["data"][0]["id"] if models.get("data") else self.url
            except (BackendError, KeyError, IndexError, TypeError):
                name = self.url
        return ModelInfo(name=name, family="remote", context_length=self.context_length,
                         fim="infill" if self._has_infill else (
                             self._fim_template.name if self._fim_template else None),
                         path=self.url)

    @property
    def tokenizer_exact(self) -> bool:
        self._discover_tokenizer()
        return bool(self._tokenize_path)

    def _discover_tokenizer(self) -> None:
        if self._tokenize_path is not None:
            return
        for path, key in (("/tokenize", "content"), ("/extras/tokenize", "input")):
            try:
                answer = self._request(path, {key: "a"})
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
        key = "content" if self._tokenize_path == "/tokenize" else "input"
        answer = self._request(self._tokenize_path, {key: text})
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
        if code_first and not grammar:
            grammar = code_first_grammar(code_first)  # no logits hook over HTTP
        payload: dict[str, Any] = {"prompt": prompt, "max_tokens": max_tokens,
                                   "temperature": temperature, "stream": True}
        if self.model:
            payload["model"] = self.model
        if stop:
            payload["stop"] = list(stop)
        if seed is not None:
            payload["seed"] = seed
        if grammar:
            payload["grammar"] = grammar
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
        """`/infill` when the server has it, else the FIM template, else prefix completion."""
        if self._has_infill is not False:
            payload: dict[str, Any] = {"input_prefix": prefix, "input_suffix": suffix,
                                       "n_predict": max_tokens, "temperature": temperature,
                                       "stream": True}
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
        template = self._fim_template
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
