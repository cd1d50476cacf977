"""Active units with and without free bits: MNIST, 784-200-200-50 MLP.

Trains the same model twice with `keras_vae.runs.train` (what
`keras-vae train` runs), once with the plain ELBO and once with free bits,
then counts active units on the test set with Burda et al.'s (2016)
criterion A_u = Cov_x(E_q[z_u]) > 0.01.

Data protocol: MNIST, dynamic binarization (train: a fresh
Bernoulli(pixel / 255) draw every batch; test: binarized once, seed 0).

    python benchmarks/free_bits_active_units.py --epochs 5 --free-bits 0.5

is the same as

    keras-vae train --epochs 5 --out RUN_A
    keras-vae train --epochs 5 --free-bits 0.5 --out RUN_B

followed by the active-unit count. Writes benchmarks/_out/
free_bits_active_units.json.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def active_units(z_mean, threshold=0.01):
    """Number of units with variance over x of E_q[z_u] above threshold."""
    activity = np.var(np.asarray(z_mean, np.float64), axis=0)
    return int(np.sum(activity > threshold)), activity


def kl_per_dimension(z_mean, z_log_var):
    """Test-set mean KL(q(z_u|x) || N(0, 1)) per latent unit, nats."""
    kl = 0.5 * (np.exp(z_log_var) + z_mean ** 2 - 1.0 - z_log_var)
    return kl.mean(0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--free-bits", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(HERE / "_out" /
                                             "free_bits_active_units.json"))
    args = parser.parse_args(argv)

    import keras

    from keras_vae import datasets, runs

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, free_bits in (("elbo", 0.0), ("free_bits", args.free_bits)):
            config = runs.TrainConfig(
                run_dir=os.path.join(tmp, name), dataset="mnist",
                latent_dim=50, hidden_units=(200, 200), epochs=args.epochs,
                batch_size=100, learning_rate=1e-3, seed=args.seed,
                free_bits=free_bits, verbose=2,
            )
            _, (x_test, _) = runs.load_data(config)
            curve = []

            class CountActive(keras.callbacks.Callback):
                """Active units on the test set after every epoch."""

                def on_epoch_end(self, epoch, logs=None):
                    z_mean, _ = self.model.encode(x_test)
                    curve.append(active_units(z_mean)[0])

            model, metrics = runs.train(config, callbacks=[CountActive()])
            z_mean, z_log_var = model.encode(x_test)
            count, activity = active_units(z_mean)
            kl = kl_per_dimension(z_mean, z_log_var)
            results[name] = {
                "free_bits_nats_per_dim": free_bits,
                "active_units": count,
                "active_units_per_epoch": curve,
                "activity_sorted": sorted(activity.round(4).tolist(),
                                          reverse=True)[:25],
                "kl_per_dim_sorted": sorted(kl.round(4).tolist(),
                                            reverse=True)[:25],
                "test": metrics["test"],
                "seconds_per_epoch": metrics["seconds_per_epoch"],
            }
            print(f"{name}: {count} active units of 50; test ELBO "
                  f"{metrics['test']['elbo']:.2f} nats", flush=True)
    report = {
        "protocol": datasets.describe_protocol("mnist", "dynamic"),
        "architecture": "MLP 784-200-200-50 (tanh), Bernoulli decoder",
        "settings": {"epochs": args.epochs, "batch_size": 100,
                     "optimizer": "Adam(1e-3)", "seed": args.seed,
                     "criterion": "Cov_x(E_q[z_u]) > 0.01 on the 10k test "
                                  "set (Burda et al. 2016)"},
        "results": results,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps({k: v["active_units"] for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
