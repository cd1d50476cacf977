"""Which likelihood for grey MNIST pixels? Compare them on one scale.

MNIST pixels are 8-bit values k / 255. The same VAE (784-200-200-20 MLP,
tanh) is trained with six decoders:

- bernoulli: binary cross-entropy on the grey values, what the Keras blog
  does. On x in [0, 1] that "likelihood" is not normalised (see below), so
  its number has no place in the comparison;
- continuous_bernoulli: the normalised density of the same form;
- gaussian, fixed sigma (default 0.1): scaled MSE plus a constant;
- gaussian, learned sigma (one trainable scalar);
- gaussian, optimal sigma (sigma^2 = the batch MSE, Rybkin et al. 2021);
- discretized_logistic: a probability on the 256 levels (Salimans et al.
  2017).

Densities and probabilities live on different scales. A density p on [0, 1]
defines a distribution on the 256 levels by integrating it over bins of
width 1/256: P(k) = integral of p over [k/256, (k+1)/256), so
log P ~= log p - log 256 per dimension, and over D dimensions

    log P(x) ~= log p(y) - D log 256,   bits/dim = -log P / (D log 2).

Made exact as a bound (Theis et al. 2016): train and score the density on
uniformly dequantized data y = (255 x + u) / 256, u ~ U(0, 1); then
E_u[log p(y)] - D log 256 <= log P(x). Scoring a density at the grid points
themselves instead can overstate it without limit (a density may spike on
the levels). This script does it the valid way for every density head, and
scores the discretized logistic on the levels directly: all bits/dim below
bound the same quantity, the cost of coding 8-bit MNIST.

    python examples/likelihood_comparison.py               # ~5 min, 2 cores
    python examples/likelihood_comparison.py --epochs 30   # longer

Prints a table (test log-likelihood in nats on each model's own scale, and
bits/dim of the 8-bit data), and writes OUT/likelihoods.png: for each model
test reconstructions (the mean of p(x|z) at z = z_mean) and prior samples.
"""

import argparse
import json
import math
import os

import keras
import numpy as np
import tensorflow as tf

import keras_vae as kv
from keras_vae import evaluation
from keras_vae import plotting

D = 784


def heads(fixed_sigma, mixture):
    """name -> (likelihood factory, data it is trained and scored on)."""
    return {
        "bernoulli (BCE)": (lambda: "bernoulli", "levels"),
        "continuous_bernoulli": (lambda: "continuous_bernoulli",
                                 "dequantized"),
        f"gaussian sigma={fixed_sigma:g}": (
            lambda: kv.likelihoods.Gaussian(fixed_sigma), "dequantized"),
        "gaussian learned sigma": (
            lambda: kv.likelihoods.Gaussian("learned"), "dequantized"),
        "gaussian optimal sigma": (
            lambda: kv.likelihoods.Gaussian("optimal"), "dequantized"),
        "discretized_logistic": (
            lambda: kv.likelihoods.DiscretizedLogistic(mixture), "levels"),
    }


def dequantize(x, seed):
    """y = (255 x + u) / 256 with u ~ U(0, 1): 8-bit levels spread over
    their bins of width 1/256 (Theis et al. 2016)."""
    u = np.random.default_rng(seed).random(x.shape, dtype=np.float32)
    return ((np.round(x * 255.0) + u) / 256.0).astype("float32")


def train_dataset(x, batch_size, dequantized, seed):
    """Batches of x; with `dequantized`, fresh uniform noise every epoch."""
    ds = tf.data.Dataset.from_tensor_slices(x).shuffle(
        len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    if dequantized:
        seeds = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True).batch(2)

        def noise(batch, pair):
            u = tf.random.stateless_uniform(tf.shape(batch), seed=pair)
            return (tf.round(batch * 255.0) + u) / 256.0

        ds = tf.data.Dataset.zip((ds, seeds)).map(noise)
    return ds.prefetch(tf.data.AUTOTUNE)


def bce_normaliser_demo():
    """How far the Bernoulli kernel on [0, 1] is from a distribution."""
    lines = []
    for lam in (0.5, 0.9, 0.99):
        integral = 0.5 if lam == 0.5 else (2 * lam - 1) / (
            math.log(lam) - math.log(1 - lam))
        total = sum(lam ** (k / 255) * (1 - lam) ** (1 - k / 255)
                    for k in range(256))
        lines.append(
            f"  lambda={lam}: integral over [0, 1] = {integral:.3f}; "
            f"sum over the 256 levels = {total:.1f}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--latent-dim", type=int, default=20)
    parser.add_argument("--train-examples", type=int, default=60000)
    parser.add_argument("--test-examples", type=int, default=1000)
    parser.add_argument("--num-samples", type=int, default=500,
                        help="K importance samples for log p(x)")
    parser.add_argument("--fixed-sigma", type=float, default=0.1)
    parser.add_argument("--mixture", type=int, default=1,
                        help="logistic components per pixel")
    parser.add_argument("--out", default="runs/likelihood_comparison")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in ("epochs", "batch_size", "latent_dim", "train_examples",
                 "test_examples", "num_samples", "mixture"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if not args.fixed_sigma > 0:
        parser.error("--fixed-sigma must be > 0")

    (x_train, _), (x_test, _) = kv.datasets.load("mnist", binarize=None)
    x_train = x_train[: args.train_examples]
    x_test = x_test[: args.test_examples]
    y_test = dequantize(x_test, seed=args.seed + 1)
    print("Data: MNIST grey pixels k/255 (8-bit); densities trained and "
          "scored on uniformly dequantized y = (255 x + u) / 256.")
    print("The Bernoulli kernel lambda^x (1 - lambda)^(1 - x) on x in [0, 1] "
          "is neither a density nor a distribution on the levels:")
    print(bce_normaliser_demo())
    os.makedirs(args.out, exist_ok=True)

    rows, pictures = [], []
    for name, (make, data) in heads(args.fixed_sigma, args.mixture).items():
        keras.utils.set_random_seed(args.seed)
        vae = kv.build_mlp_vae((28, 28, 1), args.latent_dim,
                               hidden_units=(200, 200), likelihood=make(),
                               seed=args.seed)
        vae.compile(optimizer=keras.optimizers.Adam(1e-3))
        dequantized = data == "dequantized"
        print(f"\n== {name} ({'dequantized' if dequantized else '8-bit'} "
              "data) ==")
        vae.fit(train_dataset(x_train, args.batch_size, dequantized,
                              args.seed), epochs=args.epochs, verbose=2)
        x_eval = y_test if dequantized else x_test
        ll = evaluation.log_likelihood(vae, x_eval, args.num_samples,
                                       seed=args.seed, verbose=0)
        mass = evaluation.is_mass_function(vae.likelihood)
        if name.startswith("bernoulli"):
            bits = None  # not a normalised likelihood of these data
        elif mass:
            bits = -ll.mean / (D * math.log(2))
        else:
            bits = -(ll.mean - D * math.log(256)) / (D * math.log(2))
        z_mean, _ = vae.encode(x_eval)
        _, active = evaluation.active_units(z_mean)
        rows.append({"likelihood": name, "scored_on": (
            "y (dequantized)" if dequantized else "x (8-bit levels)"),
            "log_likelihood": ll.mean, "stderr": ll.stderr,
            "elbo": float(np.mean(ll.elbo)), "kl": float(np.mean(ll.kl)),
            "active_units": int(active.sum()), "bits_per_dim_8bit": bits})
        pictures.append((name, vae.reconstruct(x_eval[:8]),
                         vae.sample(8, seed=args.seed)))

    print(f"\nTest set: first {len(x_test)} MNIST test images; "
          f"K = {args.num_samples}; {args.epochs} epochs each.")
    print(table(rows))
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    path = plot(x_test[:8], pictures, os.path.join(args.out,
                                                   "likelihoods.png"))
    print(f"Figure: {path}")


def table(rows):
    lines = [f"{'likelihood':<24}{'scored on':<18}{'log p (nats)':>13}"
             f"{'+-':>6}{'ELBO':>9}{'KL':>7}{'active':>8}"
             f"{'bits/dim (8-bit)':>22}",
             "-" * 107]
    for r in rows:
        bits = ("n/a (not normalised)" if r["bits_per_dim_8bit"] is None
                else f"{r['bits_per_dim_8bit']:.3f}")
        lines.append(
            f"{r['likelihood']:<24}{r['scored_on']:<18}"
            f"{r['log_likelihood']:>13.1f}{r['stderr']:>6.1f}"
            f"{r['elbo']:>9.1f}{r['kl']:>7.1f}{r['active_units']:>8d}"
            f"{bits:>22}")
    lines.append(
        "Densities: bits/dim = -(log p(y) - 784 log 256) / (784 log 2), an "
        "upper bound on the 8-bit model's; discretized logistic: "
        "-log P(x) / (784 log 2). Lower is better; 8 = uniform over levels.")
    return "\n".join(lines)


def plot(inputs, pictures, path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(pictures) + 1, 2,
                             figsize=(10, 1.35 * (len(pictures) + 1)))
    axes[0, 0].imshow(plotting.tile(inputs, 8), cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title("test inputs | reconstructions (mean of p(x|z))",
                         fontsize=9)
    axes[0, 1].set_title("prior samples (mean of p(x|z), z ~ N(0, I))",
                         fontsize=9)
    axes[0, 1].set_axis_off()
    for row, (name, recon, samples) in enumerate(pictures, start=1):
        axes[row, 0].imshow(plotting.tile(recon, 8), cmap="gray", vmin=0,
                            vmax=1)
        axes[row, 1].imshow(plotting.tile(samples, 8), cmap="gray", vmin=0,
                            vmax=1)
        axes[row, 0].set_ylabel(name, fontsize=8, rotation=0, ha="right",
                                va="center")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return plotting.save_figure(fig, path)


if __name__ == "__main__":
    main()
