#!/usr/bin/env bash
# Set up MusicRFM in ./.venv on a fresh machine: system packages (Debian/Ubuntu), PyTorch, the
# package with its studio, detectors, distributed (accelerate) and development extras. Safe to run
# again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
# CPU PyTorch by default; set TORCH_SPEC (e.g. "torch==2.13.0" or "torch") to choose another build.
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"

# TinySoundFont's metadata pulls PyAudio, which compiles against PortAudio on Linux; the studio's
# browser tests drive the distribution's Chromium (Playwright cannot download its own here); the
# mix validation set renders through FluidSynth with the FluidR3 GM soundfont.
if [ "$(uname -s)" = "Linux" ]; then
  MISSING=""
  [ -e /usr/include/portaudio.h ] || MISSING="$MISSING portaudio19-dev"
  command -v chromium >/dev/null 2>&1 || MISSING="$MISSING chromium"
  command -v fluidsynth >/dev/null 2>&1 || MISSING="$MISSING fluidsynth"
  [ -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || MISSING="$MISSING fluid-soundfont-gm"
  if [ -n "$MISSING" ]; then
    if command -v apt-get >/dev/null 2>&1; then
      SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"
      $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $MISSING >/dev/null
    else
      echo "setup: install$MISSING (or your distro's equivalents)" >&2
      exit 1
    fi
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q "$TORCH_SPEC" 2>&1 | grep -v "is ignored" || true
fi
.venv/bin/python -m pip install -q -e ".[dev,studio,detectors,distributed]" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q --no-deps "basic-pitch==0.4.0" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import importlib.util, musicrfm, torch, transformers, gradio, fluidsynth; assert importlib.util.find_spec('basic_pitch'), 'basic-pitch is missing'; print('musicrfm', musicrfm.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__, '| gradio', gradio.__version__)"
