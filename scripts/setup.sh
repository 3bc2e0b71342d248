#!/usr/bin/env bash
# Set up MusicRFM in ./.venv on a fresh machine: system library (Debian/Ubuntu), PyTorch, the package.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
# CPU PyTorch by default; set TORCH_SPEC (e.g. "torch==2.13.0" or "torch") to choose another build.
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"

# TinySoundFont's metadata pulls PyAudio, which compiles against PortAudio on Linux.
if [ "$(uname -s)" = "Linux" ] && ! [ -e /usr/include/portaudio.h ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq portaudio19-dev >/dev/null
  else
    echo "setup: install the PortAudio headers (portaudio19-dev or your distro's equivalent)" >&2
    exit 1
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q "$TORCH_SPEC" 2>&1 | grep -v "is ignored" || true
fi
.venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import musicrfm, torch, transformers; print('musicrfm', musicrfm.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__)"
