#!/usr/bin/env bash
# The main job: set up, then train, evaluate and export a VAE on MNIST.
#
#   784-200-200-50 MLP (tanh), Bernoulli decoder, dynamically binarized
#   MNIST, Adam 1e-3, batch 100 -> runs/mnist_mlp (model, metrics, figures)
#   -> test log p(x) by importance sampling -> saved_models/mnist_vae/<N>.
#
# Settings can be changed through the environment, e.g.
#   EPOCHS=50 EVAL_K=1000 EVAL_EXAMPLES=2000 bash scripts/main.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export KERAS_VAE_DATA_DIR="${KERAS_VAE_DATA_DIR:-$(cd .. && pwd)/shared/data}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

RUN_DIR="${RUN_DIR:-runs/mnist_mlp}"
EPOCHS="${EPOCHS:-20}"
EVAL_K="${EVAL_K:-5000}"
EVAL_EXAMPLES="${EVAL_EXAMPLES:-10000}"

keras-vae train --dataset mnist --arch mlp --hidden-units 200,200 \
  --latent-dim 50 --likelihood bernoulli --binarize dynamic \
  --epochs "$EPOCHS" --batch-size 100 --learning-rate 1e-3 \
  --out "$RUN_DIR" --overwrite
keras-vae evaluate "$RUN_DIR" --num-samples "$EVAL_K" \
  --max-examples "$EVAL_EXAMPLES"
keras-vae export "$RUN_DIR" --to saved_models/mnist_vae
echo
echo "Done. Metrics: $RUN_DIR/metrics.json and $RUN_DIR/evaluation.json;"
echo "figures: $RUN_DIR/figures/; SavedModel: saved_models/mnist_vae/"
