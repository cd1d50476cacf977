"""Why not find the best z for each x? Measure what amortization costs.

The encoder gives q(z|x) for any x in one forward pass: inference is
amortized over the data set. The best diagonal Gaussian for one example
can instead be found by optimising that example's ELBO directly (decoder
fixed). Cremer, Li & Duvenaud (2018) split the inference gap accordingly:

    log p(x) - ELBO(encoder q) = [log p(x) - ELBO(q*)]            approximation
                               + [ELBO(q*) - ELBO(encoder q)]     amortization

This script trains the IWAE paper's 784-200-200-50 VAE briefly (or loads a
run written by `keras-vae train`), then on held-out digits:

- estimates log p(x) by importance sampling (K draws),
- refines every example's q with Adam (`kv.evaluation.refine`),
- finds the MAP z* = argmax p(x|z) p(z) (`kv.evaluation.map_estimate`) to
  show that log p(x, z*) is not a bound on log p(x),
- times each route per example, and plots the refined ELBO against the
  number of refinement steps.

    python examples/amortization_gap.py                     # ~3-4 min
    python examples/amortization_gap.py --run-dir runs/x    # a trained run
    python examples/amortization_gap.py \
        --model benchmarks/_out/likelihood_mnist.keras      # the benchmark's

Data: MNIST, dynamic binarization (test images binarized once, seed 0).
"""

import argparse
import json
import os

import keras
import numpy as np

import keras_vae as kv
from keras_vae import evaluation
from keras_vae import plotting
from keras_vae import runs


def load_or_train(args):
    if args.model:
        model = keras.models.load_model(args.model, safe_mode=True)
        _, (x_test, _) = kv.datasets.load("mnist", binarize="dynamic",
                                          seed=args.seed)
        return model, x_test, kv.datasets.describe_protocol(
            "mnist", "dynamic", seed=args.seed)
    if args.run_dir:
        run = runs.RunDirectory(args.run_dir)
        run.require_finished()
        model = run.load_model()
        metrics = run.read_metrics()
        # The test set binarized as the run binarized it (its seed).
        _, (x_test, _) = kv.datasets.load(
            metrics["dataset"], binarize=metrics["binarize"],
            seed=int(run.read_config().get("seed", 0)))
        return model, x_test, metrics.get("protocol", "see metrics.json")
    keras.utils.set_random_seed(args.seed)
    (x_train, _), (x_test, _) = kv.datasets.load("mnist", binarize="dynamic",
                                                 seed=args.seed)
    model = kv.build_mlp_vae((28, 28, 1), 50, hidden_units=(200, 200),
                             seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-4))
    model.fit(kv.datasets.make_dataset(x_train, batch_size=100,
                                       binarize="dynamic", seed=args.seed),
              epochs=args.epochs, verbose=2)
    return model, x_test, kv.datasets.describe_protocol("mnist", "dynamic")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default=None,
                        help="evaluate RUN_DIR/model.keras instead of "
                             "training")
    parser.add_argument("--model", default=None,
                        help="a .keras VAE trained on dynamically binarized "
                             "MNIST, e.g. benchmarks/_out/"
                             "likelihood_mnist.keras")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--test-examples", type=int, default=500)
    parser.add_argument("--num-samples", type=int, default=1000, help="K")
    parser.add_argument("--steps", type=int, default=500,
                        help="refinement steps")
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--curve-steps", default="10,30,100,300,1000,3000",
                        help="refinement lengths for the ELBO-vs-steps "
                             "curve")
    parser.add_argument("--out", default="runs/amortization_gap")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in ("epochs", "test_examples", "num_samples", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")

    model, x_test, protocol = load_or_train(args)
    x = x_test[: args.test_examples]
    result = evaluation.amortization_gap(
        model, x, num_samples=args.num_samples, steps=args.steps,
        learning_rate=args.learning_rate, seed=args.seed, verbose=0,
        return_per_example=True)
    print(f"\nData: {protocol}")
    print(evaluation.format_amortization(result))

    # The refined ELBO as the optimiser runs longer.
    curve = [(0, result["elbo_amortized"]["mean"])]
    for steps in (int(s) for s in args.curve_steps.split(",")):
        refined = evaluation.refine(model, x, steps=steps,
                                    learning_rate=args.learning_rate,
                                    seed=args.seed, eval_samples=200)
        curve.append((steps, float(np.mean(refined.elbo_refined))))
        print(f"refined ELBO after {steps:>4} steps: {curve[-1][1]:.2f} nats"
              f" ({1e3 * refined.seconds_per_example:.2f} ms per example)")

    os.makedirs(args.out, exist_ok=True)
    per_example = result.pop("per_example")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"protocol": protocol, "args": vars(args),
                   "result": result, "curve": curve}, f, indent=2)
    path = plot(result, per_example, curve,
                os.path.join(args.out, "amortization_gap.png"))
    print(f"Figure: {path}")


def plot(result, per_example, curve, path):
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [max(s, 1) for s, _ in curve]
    ax1.plot(steps, [v for _, v in curve], "o-", label="ELBO, refined q")
    ax1.axhline(result["log_likelihood"]["mean"], color="k", ls="--",
                label=f"log p(x), K = {result['num_samples']}")
    ax1.axhline(result["elbo_amortized"]["mean"], color="C1", ls=":",
                label="ELBO, encoder q (step 0)")
    ax1.set_xscale("log")
    ax1.set_xlabel("refinement steps per example (Adam; 0 drawn at 1)")
    ax1.set_ylabel("nats per test image")
    ax1.set_title("amortization gap closes with per-example optimisation",
                  fontsize=10)
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)

    log_px = per_example["log_likelihood"]
    ax2.hist(log_px - per_example["elbo_amortized"], bins=40, alpha=0.6,
             label="log p(x) - ELBO(encoder)")
    ax2.hist(log_px - per_example["elbo_refined"], bins=40, alpha=0.6,
             label="log p(x) - ELBO(refined)")
    ax2.hist(per_example["map_log_joint"] - log_px, bins=40, alpha=0.6,
             label="log p(x, z*) - log p(x)  (MAP)")
    ax2.axvline(0, color="k", lw=0.8)
    ax2.set_xlabel("nats")
    ax2.set_ylabel("test images")
    ax2.set_title("per-example gaps to log p(x); the MAP joint is no bound",
                  fontsize=10)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return plotting.save_figure(fig, path)


if __name__ == "__main__":
    main()
