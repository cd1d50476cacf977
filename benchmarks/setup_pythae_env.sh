#!/usr/bin/env bash
# Create benchmarks/_envs/pythae: a separate virtualenv holding PyTorch (CPU)
# and Pythae 0.1.2, the PyTorch baseline of benchmarks/train_throughput.py.
#
#   bash benchmarks/setup_pythae_env.sh      # idempotent: a working env is kept
#   PYTHAE_ENV_DIR=/some/dir bash benchmarks/setup_pythae_env.sh
#   FORCE=1 bash benchmarks/setup_pythae_env.sh   # rebuild from scratch
#
# A separate environment because Pythae brings PyTorch and pins of its own that
# have nothing to do with keras_vae. Pins: benchmarks/requirements-pythae.txt.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENV_DIR="${PYTHAE_ENV_DIR:-$HERE/_envs/pythae}"
PYTHON="${PYTHON:-python3}"
REQS="$HERE/requirements-pythae.txt"

check() {
  "$ENV_DIR/bin/python" -W ignore - <<'PY'
from importlib.metadata import version
import torch
from pythae.models import VAE, VAEConfig  # noqa: F401
from pythae.models.nn import BaseDecoder, BaseEncoder  # noqa: F401
from pythae.trainers import BaseTrainer, BaseTrainerConfig  # noqa: F401
problems = []
if torch.__version__.split("+")[0] != "2.13.0":
    problems.append(f"torch {torch.__version__} (expected 2.13.0)")
if torch.version.cuda is not None:
    problems.append(f"torch is a CUDA build ({torch.version.cuda}); expected the CPU build")
if version("pythae") != "0.1.2":
    problems.append(f"pythae {version('pythae')} (expected 0.1.2)")
if problems:
    raise SystemExit("pythae env is wrong: " + "; ".join(problems))
print(f"pythae env OK: torch {torch.__version__}, pythae {version('pythae')}, "
      f"pydantic {version('pydantic')}, numpy {version('numpy')}")
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
# torch alone and first, exactly pinned: with it in place, pythae's
# "torch>=1.10.1" is satisfied and pip never looks for a (CUDA) torch.
"$ENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
"$ENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"

if ! check; then
  echo "error: $ENV_DIR was built but the check above failed." >&2
  exit 1
fi
