"""The Frey Face experiment of Kingma & Welling (2014), with its manifold.

AEVB's continuous-data experiment: 1,965 greyscale faces (28 x 20) of one
person, a Gaussian MLP decoder that outputs a mean and a variance per pixel,
one hidden layer of 200 tanh units in the encoder and the decoder, and a
2-D latent space whose decoded grid (their figure 4a) shows the pose and
the expression varying smoothly.

    python examples/frey_face_vae.py                    # ~3 min, 2 cores
    python examples/frey_face_vae.py --epochs 5000      # longer

Data: Frey Face, pixels / 255 as continuous values in [0, 1], the fixed
90/10 split of `kv.datasets.load("frey_face")` (1,768 train / 197 test).
Differences from the paper: Adam instead of Adagrad, and the mean is not
squashed by a sigmoid. The numbers printed are densities (nats per face,
positive because the pixel densities exceed 1); as 8-bit data they convert
to bits/dim by -(log p - D log 256) / (D log 2), approximately (the faces
are scored at their 8-bit levels, not dequantized).

Writes OUT/manifold.png (the learned 2-D manifold: the mean of p(x|z) on a
grid of prior quantiles), OUT/samples.png, OUT/reconstructions.png and
OUT/evaluation.txt.
"""

import argparse
import os
import time

import keras

import keras_vae as kv
from keras_vae import evaluation
from keras_vae import plotting


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--hidden-units", type=int, default=200)
    parser.add_argument("--latent-dim", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--scale", default="heteroscedastic",
                        choices=["heteroscedastic", "learned",
                                 "per_dimension"],
                        help="Gaussian scale: decoder output per pixel "
                             "(AEVB), one learned scalar, or one per pixel")
    parser.add_argument("--num-samples", type=int, default=1000,
                        help="K for the test log p(x)")
    parser.add_argument("--grid", type=int, default=20,
                        help="manifold grid side (latent_dim 2 only)")
    parser.add_argument("--out", default="runs/frey_face")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in ("epochs", "batch_size", "hidden_units", "latent_dim",
                 "num_samples", "grid"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")

    keras.utils.set_random_seed(args.seed)
    (x_train, _), (x_test, _) = kv.datasets.load("frey_face")
    protocol = kv.datasets.describe_protocol("frey_face", None)
    vae = kv.build_mlp_vae(
        x_train.shape[1:], args.latent_dim, hidden_units=(args.hidden_units,),
        likelihood=kv.likelihoods.Gaussian(args.scale),
        seed=args.seed)
    vae.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    train = kv.datasets.make_dataset(x_train, batch_size=args.batch_size,
                                     seed=args.seed)
    start = time.perf_counter()
    vae.fit(train, epochs=args.epochs, verbose=2 if args.epochs <= 50 else 0)
    print(f"{args.epochs} epochs in {time.perf_counter() - start:.0f} s")

    result = evaluation.report(vae, x_test, num_samples=args.num_samples,
                               protocol=protocol, verbose=0)
    os.makedirs(args.out, exist_ok=True)
    evaluation.write_report(result, args.out)
    print(evaluation.format_report(result))

    paths = [
        plotting.plot_image_grid(
            vae.sample(60, seed=args.seed), os.path.join(args.out,
                                                         "samples.png"),
            title="mean of p(x|z), z ~ N(0, I)"),
        plotting.plot_reconstructions(
            x_test[:20], vae.reconstruct(x_test[:20]),
            os.path.join(args.out, "reconstructions.png")),
    ]
    if args.latent_dim == 2:
        grid = plotting.manifold_grid(args.grid)
        faces = vae.decode(grid).mean().numpy()
        paths.append(plotting.plot_manifold(
            faces, os.path.join(args.out, "manifold.png"), n=args.grid,
            title="Frey Face: learned 2-D manifold (AEVB figure 4a)"))
    print("Figures: " + ", ".join(paths))


if __name__ == "__main__":
    main()
