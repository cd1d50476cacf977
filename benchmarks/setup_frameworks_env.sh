#!/usr/bin/env bash
# Create benchmarks/_envs/frameworks: a separate virtualenv holding PyTorch
# 2.13 (CPU) and JAX + optax, for the PyTorch and JAX rows of
# benchmarks/train_throughput.py (benchmarks/baselines/pytorch_vae.py and
# jax_vae.py).
#
#   bash benchmarks/setup_frameworks_env.sh      # idempotent: a working env is kept
#   FRAMEWORKS_ENV_DIR=/some/dir bash benchmarks/setup_frameworks_env.sh
#   FORCE=1 bash benchmarks/setup_frameworks_env.sh   # rebuild from scratch
#
# Separate from the project's .venv so that neither framework's pins touch
# keras_vae's. Pins: benchmarks/requirements-frameworks.txt.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENV_DIR="${FRAMEWORKS_ENV_DIR:-$HERE/_envs/frameworks}"
PYTHON="${PYTHON:-python3}"
REQS="$HERE/requirements-frameworks.txt"

check() {
  "$ENV_DIR/bin/python" -W ignore - <<'PY'
from importlib.metadata import version
import jax, optax, torch  # noqa: F401
problems = []
if torch.__version__.split("+")[0] != "2.13.0":
    problems.append(f"torch {torch.__version__} (expected 2.13.0)")
if torch.version.cuda is not None:
    problems.append(f"torch is a CUDA build ({torch.version.cuda}); expected the CPU build")
for name, expected in (("jax", "0.10.2"), ("jaxlib", "0.10.2"), ("optax", "0.2.8")):
    if version(name) != expected:
        problems.append(f"{name} {version(name)} (expected {expected})")
if problems:
    raise SystemExit("frameworks env is wrong: " + "; ".join(problems))
print(f"frameworks env OK: torch {torch.__version__}, jax {jax.__version__}, "
      f"optax {version('optax')}, numpy {version('numpy')}, jax devices {jax.devices()}")
PY
}

if [ "${FORCE:-0}" != "1" ] && [ -x "$ENV_DIR/bin/python" ] && check 2>/dev/null; then
  exit 0
fi

if [ -e "$ENV_DIR" ]; then
  echo "Rebuilding $ENV_DIR (missing or broken)"
  rm -rf "$ENV_DIR"
else
  echo "Creating $ENV_DIR"
fi
mkdir -p "$(dirname "$ENV_DIR")"
"$PYTHON" -m venv "$ENV_DIR"
# torch alone and first, exactly pinned, so that pip takes the CPU build on
# this machine's disk and never looks for a CUDA one.
"$ENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
"$ENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"

if ! check; then
  echo "error: $ENV_DIR was built but the check above failed." >&2
  exit 1
fi
