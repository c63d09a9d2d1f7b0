#!/usr/bin/env bash
# Creates (once) the Python environment the golden-making scripts run in, with pinned reference
# libraries from PyPI, and prints its python path. Usage: PY=$(tools/refenv.sh)
set -euo pipefail
venv=${PDIFF_REFENV:-$HOME/.cache/pdiff-refenv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q torch==2.9.1 transformers==5.2.0 diffusers==0.42.1 tokenizers==0.22.2 safetensors==0.8.0 \
    accelerate==1.15.0 sentencepiece protobuf numpy==2.4.6 einops torchvision==0.24.1 matplotlib==3.10.8 >&2
fi
# environments made before matplotlib joined the list (scripts/bench.sh plots with it)
"$venv/bin/python" -c "import matplotlib" 2>/dev/null || "$venv/bin/pip" install -q matplotlib==3.10.8 >&2
echo "$venv/bin/python"
