#!/usr/bin/env bash
# Creates .venv (if missing) and installs keras_vae with its test and serving
# extras. Safe to run again: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[test,serving]"
python -c "import keras_vae, tensorflow as tf, tensorflow_probability as tfp; \
print('keras_vae', keras_vae.__version__, '| TensorFlow', tf.__version__, '| TFP', tfp.__version__)" 2>/dev/null
