"""Serve an MNIST VAE and use its log-likelihood as an anomaly score.

Trains (or loads) the IWAE paper's 784-200-200-50 Bernoulli VAE on
dynamically binarized MNIST, exports it for TF Serving, loads the export
with `tf.saved_model.load` (TensorFlow alone, as a server would) and scores
test digits and out-of-distribution inputs with the `log_likelihood`
signature (importance-sampled log p(x), nats). A low log p(x) flags an
input the model has not learnt to explain.

    # train 5 epochs (a few minutes on 2 CPU cores), export, score
    python examples/serve_mnist.py --data-dir ../shared/data
    # reuse a run of `keras-vae train` (RUN_DIR/model.keras)
    python examples/serve_mnist.py --run-dir runs/mnist_mlp
    # also score through a running TF Serving (saved_models/README.md)
    python examples/serve_mnist.py --server-url http://localhost:8501

Data protocol: every input is binary. MNIST test digits are binarized once
with seed 0 (kv.datasets.load(..., binarize="dynamic")); the other inputs
are binarized the same way, x ~ Bernoulli(grey value), once with a fixed
seed: inverted digits (1 - grey value), Frey faces (28x20, zero-padded to
28x28), and noise with MNIST's mean pixel density.
"""

import argparse
import os
import pathlib
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_vae as kv  # noqa: E402
from keras_vae import runs  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", default="runs/serve_mnist",
                   help="model.keras is loaded from here if present, else "
                        "trained and saved here (default: runs/serve_mnist)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--export-dir", default="saved_models/mnist_vae",
                   help="model base path (default: saved_models/mnist_vae)")
    p.add_argument("--num-examples", type=int, default=500,
                   help="inputs scored per set (default: 500)")
    p.add_argument("--num-samples", type=int, default=500,
                   help="K importance samples per input (default: 500)")
    p.add_argument("--server-url", default=None,
                   help="TF Serving REST address; also score through it")
    p.add_argument("--model-name", default="mnist_vae")
    p.add_argument("--data-dir", default=None,
                   help="folder with mnist.npz and frey_face.npz (default: "
                        "$KERAS_VAE_DATA_DIR and the usual places)")
    p.add_argument("--figure", default=None,
                   help="histogram path (default: RUN_DIR/ood_scores.png)")
    return p.parse_args()


def get_model(run_dir, epochs, data_dir):
    run = runs.RunDirectory(run_dir)
    if os.path.isfile(run.model_path):
        print(f"Loading {run.model_path}")
        return run.load_model()
    print(f"Training the 784-200-200-50 Bernoulli VAE for {epochs} epochs "
          "on dynamically binarized MNIST")
    (x_train, _), _ = kv.datasets.load("mnist", binarize="dynamic",
                                       data_dir=data_dir)
    model = kv.build_mlp_vae((28, 28, 1), 50, hidden_units=(200, 200),
                             likelihood="bernoulli", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(kv.datasets.make_dataset(x_train, batch_size=100,
                                       binarize="dynamic", shuffle=True,
                                       seed=0),
              epochs=epochs, verbose=2)
    run.save_model(model)
    return model


def binarize(x, seed):
    rng = np.random.default_rng(seed)
    return (rng.uniform(size=x.shape) < x).astype("float32")


def input_sets(n, data_dir):
    (x_train, _), (x_test, _) = kv.datasets.load(
        "mnist", binarize="dynamic", data_dir=data_dir)
    grey_test = kv.datasets.load("mnist", data_dir=data_dir)[1][0]
    (faces, _), (faces_test, _) = kv.datasets.load("frey_face",
                                                   data_dir=data_dir)
    faces = np.concatenate([faces, faces_test])[:n]
    faces = np.pad(faces, ((0, 0), (0, 0), (4, 4), (0, 0)))  # 28x20 -> 28x28
    density = float(x_train.mean())
    return {
        "MNIST test digits": x_test[:n],
        "inverted digits": binarize(1.0 - grey_test[:n], seed=1),
        "Frey faces": binarize(faces, seed=2),
        f"noise (p={density:.2f})": binarize(
            np.full((n, 28, 28, 1), density, "float32"), seed=3),
    }


def score(fn, x, k, batch_size=100):
    out = [fn(x[i:i + batch_size], k) for i in range(0, len(x), batch_size)]
    return np.concatenate(out)


def auroc(normal, anomalous):
    """P(score of an anomaly < score of a normal input), ties counted half
    (the Mann-Whitney statistic), scores being log p(x)."""
    normal = np.asarray(normal)[:, None]
    anomalous = np.asarray(anomalous)[None, :]
    return float(np.mean((anomalous < normal) + 0.5 * (anomalous == normal)))


def main():
    args = parse_args()
    model = get_model(args.run_dir, args.epochs, args.data_dir)
    path = kv.export_saved_model(model, args.export_dir)
    print(f"Exported to {path}")

    served = tf.saved_model.load(path)
    signature = served.signatures["log_likelihood"]

    def local(x, k):
        return signature(x=tf.constant(x),
                         num_samples=tf.constant(k, tf.int32))[
            "log_likelihood"].numpy()

    sets = input_sets(args.num_examples, args.data_dir)
    scores = {}
    k = args.num_samples
    print(f"\nlog p(x) in nats, K = {k} importance samples, "
          f"{args.num_examples} binary inputs per set")
    for name, x in sets.items():
        start = time.perf_counter()
        scores[name] = score(local, x, k)
        took = time.perf_counter() - start
        print(f"  {name:24s} mean {scores[name].mean():9.2f}  "
              f"sd {scores[name].std():7.2f}  ({took:.1f} s)")

    normal = scores["MNIST test digits"]
    threshold = np.quantile(normal, 0.01)
    print(f"\nThreshold: 1st percentile of test digits, {threshold:.2f} "
          "nats")
    for name, values in scores.items():
        if name == "MNIST test digits":
            continue
        print(f"  {name:24s} AUROC {auroc(normal, values):.4f}  flagged "
              f"{np.mean(values < threshold):6.1%}")

    if args.server_url:
        client = kv.serving.RestClient(args.server_url, args.model_name)
        x = sets["MNIST test digits"][:100]
        remote = client.log_likelihood(x, num_samples=k)
        print(f"\nTF Serving at {args.server_url}: max |REST - local| over "
              f"100 digits = {np.max(np.abs(remote - local(x, k))):.2e} nats")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = args.figure or os.path.join(args.run_dir, "ood_scores.png")
    fig, ax = plt.subplots(figsize=(7, 4))
    low = min(np.quantile(v, 0.01) for v in scores.values())
    bins = np.linspace(low, max(v.max() for v in scores.values()), 80)
    for name, values in scores.items():
        ax.hist(np.clip(values, low, None), bins=bins, alpha=0.55,
                label=name)
    ax.axvline(threshold, color="k", lw=1, ls="--", label="threshold")
    ax.set_xlabel(f"log p(x), nats (served log_likelihood, K = {k})")
    ax.set_ylabel("inputs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    pathlib.Path(figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=120)
    print(f"\nHistogram: {figure}")


if __name__ == "__main__":
    main()
