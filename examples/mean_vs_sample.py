"""Why does a VAE sample z? Train it with and without the draw and compare.

Two models with the same networks, data and optimiser:

- "sampled": the VAE. Its reconstruction term is E_q[log p(x|z)], estimated
  with one draw z = z_mean + exp(z_log_var / 2) * eps (reparameterization).
- "z = z_mean": `kv.DeterministicVAE`. Its train step plugs in the mean,
  -log p(x|z_mean) + KL: a deterministic autoencoder plus the KL term.

Both are then measured the same way on held-out digits: the ELBO, log p(x)
by importance sampling (K draws, with the better of the encoder's q and a
per-example refined q as proposal, so that the deterministic model's poor
q does not make its log p(x) look worse than it is), the two estimates of
the reconstruction term, the KL, the active units, and samples from the
prior.

    python examples/mean_vs_sample.py                 # ~3-5 min, 2 CPU cores
    python examples/mean_vs_sample.py --epochs 50     # longer

Data: MNIST with dynamic binarization (a fresh Bernoulli(pixel / 255) draw
each epoch; the test images binarized once with seed 0), Bernoulli decoder.
What you should see: the plug-in model reconstructs a little better at
z = z_mean, but its ELBO and log p(x) are far worse, its z_log_var sits near
0 (variance 1, pushed there by the KL alone), and its prior samples are not
digits, because nothing trained its decoder on the z the prior produces.
"""

import argparse
import json
import os

import keras
import numpy as np

import keras_vae as kv
from keras_vae import evaluation
from keras_vae import plotting


def build(kind, latent_dim, hidden, seed):
    encoder = kv.build_mlp_encoder((28, 28, 1), latent_dim, hidden)
    decoder = kv.build_mlp_decoder(latent_dim, (28, 28, 1),
                                   tuple(reversed(hidden)))
    cls = kv.VAE if kind == "sampled" else kv.DeterministicVAE
    return cls(encoder, decoder, likelihood="bernoulli", seed=seed)


def measure(model, x, k, refine_steps, seed):
    gaps = evaluation.amortization_gap(model, x, num_samples=k,
                                       steps=refine_steps, seed=seed,
                                       verbose=0)
    rep = evaluation.report(model, x, num_samples=k, seed=seed, verbose=0)
    _, z_log_var = model.encode(x)
    return {
        "log_likelihood": gaps["log_likelihood"],
        "log_likelihood_proposal": gaps["log_likelihood_proposal"],
        "elbo": rep["elbo"],
        "reconstruction_sampled": rep["reconstruction_sampled"],
        "reconstruction_at_mean": rep["reconstruction_at_mean"],
        "kl": rep["kl_loss"],
        "active_units": rep["active_units"]["count"],
        "mean_z_log_var": float(np.mean(z_log_var)),
        "gap": {"mean": gaps["log_likelihood"]["mean"]
                - rep["elbo"]["mean"]},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--latent-dim", type=int, default=20)
    parser.add_argument("--hidden-units", default="200,200")
    parser.add_argument("--train-examples", type=int, default=60000)
    parser.add_argument("--test-examples", type=int, default=1000)
    parser.add_argument("--num-samples", type=int, default=1000,
                        help="K for log p(x) and the ELBO")
    parser.add_argument("--refine-steps", type=int, default=300)
    parser.add_argument("--out", default="runs/mean_vs_sample")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in ("epochs", "batch_size", "latent_dim", "train_examples",
                 "test_examples", "num_samples", "refine_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    hidden = tuple(int(u) for u in args.hidden_units.split(","))

    (x_train, _), (x_test, _) = kv.datasets.load("mnist", binarize="dynamic",
                                                 seed=args.seed)
    x_train = x_train[: args.train_examples]
    x_test = x_test[: args.test_examples]
    protocol = kv.datasets.describe_protocol("mnist", "dynamic",
                                             seed=args.seed)
    os.makedirs(args.out, exist_ok=True)
    results, samples = {}, {}
    for kind in ("sampled", "z = z_mean"):
        keras.utils.set_random_seed(args.seed)
        model = build(kind, args.latent_dim, hidden, args.seed)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        train = kv.datasets.make_dataset(
            x_train, batch_size=args.batch_size, binarize="dynamic",
            seed=args.seed)
        print(f"\n== training: {kind} ==")
        history = model.fit(train, epochs=args.epochs, verbose=2)
        results[kind] = measure(model, x_test, args.num_samples,
                                args.refine_steps, args.seed)
        results[kind]["final_train_loss"] = float(history.history["loss"][-1])
        samples[kind] = model.sample(50, seed=args.seed)

    print(f"\nData: {protocol}; {len(x_test)} test images; "
          f"K = {args.num_samples}; nats per image")
    print(table(results))
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"protocol": protocol, "args": vars(args),
                   "results": results}, f, indent=2)
    path = plot(samples, results, os.path.join(args.out, "prior_samples.png"))
    print(f"Figure: {path}")


def table(results):
    rows = [
        ("training objective (final epoch, train)", "final_train_loss", -1),
        ("log p(x)  (IWAE, best proposal)", "log_likelihood", 1),
        ("ELBO  (sampled z, closed-form KL)", "elbo", 1),
        ("gap log p(x) - ELBO", "gap", 1),
        ("E_q[log p(x|z)]  (sampled)", "reconstruction_sampled", 1),
        ("log p(x|z_mean)  (plugged-in mean)", "reconstruction_at_mean", 1),
        ("KL(q(z|x) || p(z))", "kl", 1),
        ("mean z_log_var", "mean_z_log_var", 1),
        ("active units", "active_units", 1),
    ]
    kinds = list(results)
    lines = [f"{'':<42}" + "".join(f"{k:>14}" for k in kinds),
             "-" * (42 + 14 * len(kinds))]
    for label, key, sign in rows:
        cells = []
        for kind in kinds:
            value = results[kind][key]
            value = value["mean"] if isinstance(value, dict) else value
            cells.append(f"{sign * value:>14.2f}" if key != "active_units"
                         else f"{value:>14d}")
        lines.append(f"{label:<42}" + "".join(cells))
    lines.append("(the training objective row is minus the loss each model "
                 "minimised; only the sampled one is an ELBO)")
    return "\n".join(lines)


def plot(samples, results, path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(samples), figsize=(5 * len(samples), 3.3))
    for ax, (kind, images) in zip(np.atleast_1d(axes), samples.items()):
        r = results[kind]
        ax.imshow(plotting.tile(images, 10), cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
        ax.set_title(
            f"{kind}: log p(x) {r['log_likelihood']['mean']:.1f}, "
            f"ELBO {r['elbo']['mean']:.1f} nats", fontsize=10)
    fig.suptitle("mean of p(x|z) for z ~ N(0, I)", fontsize=10)
    fig.tight_layout()
    return plotting.save_figure(fig, path)


if __name__ == "__main__":
    main()
