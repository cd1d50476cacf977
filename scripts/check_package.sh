#!/usr/bin/env bash
# Builds keras_vae's wheel and sdist, installs the wheel alone into a new
# virtual environment, and uses it from outside the checkout: `keras-vae
# --help` and a one-epoch `keras-vae train` on MNIST. .ci/run runs it after
# the tests; run it by hand the same way:
#
#   bash scripts/check_package.sh
#
# Needs the package index (pip installs TensorFlow and the other
# dependencies into the new environment) and KERAS_VAE_DATA_DIR or
# ../shared/data for MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_VAE_DATA_DIR="${KERAS_VAE_DATA_DIR:-$(cd .. && pwd)/shared/data}"
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step() { echo "check_package: $*"; }

step "building the wheel and the sdist"
"$PYTHON" -m venv "$work/build-env"
"$work/build-env/bin/python" -m pip install --quiet "build>=1.2,<2"
if ! "$work/build-env/bin/python" -m build --outdir "$work/dist" . \
    > "$work/build.log" 2>&1; then
  cat "$work/build.log"
  exit 1
fi
wheel=$(ls "$work"/dist/keras_vae-*.whl)
sdist=$(ls "$work"/dist/keras_vae-*.tar.gz)
step "built $(basename "$wheel") and $(basename "$sdist")"
"$work/build-env/bin/python" -m zipfile -l "$wheel" > "$work/wheel.txt"
tar tzf "$sdist" > "$work/sdist.txt"
for f in keras_vae/pretrained.json keras_vae/cli.py keras_vae/data/stream.py; do
  grep -q "^$f " "$work/wheel.txt" \
    || { echo "check_package: $f is missing from the wheel" >&2; exit 1; }
  grep -q "/$f\$" "$work/sdist.txt" \
    || { echo "check_package: $f is missing from the sdist" >&2; exit 1; }
done

step "installing the wheel into a new environment"
"$PYTHON" -m venv "$work/env"
"$work/env/bin/python" -m pip install --quiet "$wheel"

# Away from the checkout, so that only the installed wheel can be imported.
cd "$work"
cat > where.py <<'PY'
import os, keras_vae
where = os.path.dirname(keras_vae.__file__)
assert "site-packages" in where, f"keras_vae imported from {where}"
print(f"check_package: keras_vae {keras_vae.__version__} from {where}")
PY
"$work/env/bin/python" where.py 2> import.err || {
  cat import.err >&2; exit 1; }
"$work/env/bin/keras-vae" --help > help.txt
for command in train export serve-check evaluate; do
  grep -q "$command" help.txt || {
    echo "check_package: keras-vae --help does not list $command" >&2
    cat help.txt >&2; exit 1; }
done
step "keras-vae --help lists train, export, serve-check and evaluate"
"$work/env/bin/keras-vae" train --dataset mnist --epochs 1 \
  --max-train-examples 2000 --latent-dim 2 --out "$work/run" \
  --progress 0 > train.log 2> train.err || {
  cat train.log train.err; exit 1; }
for f in model.keras metrics.json history.json figures/latent_scatter.png; do
  test -s "$work/run/$f" || {
    echo "check_package: the run wrote no $f" >&2; cat train.log train.err
    exit 1; }
done
if [ -s train.err ]; then
  echo "check_package: keras-vae train wrote to stderr:" >&2
  cat train.err >&2
  exit 1
fi
tail -n 3 train.log
step "the wheel trains, writes its run directory and keeps stderr quiet"
