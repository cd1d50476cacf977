"""The `keras-vae` command: parse arguments, call the library, print.

    keras-vae train --dataset mnist --epochs 10 --out runs/mnist_mlp
"""

import argparse
import os
import sys


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, received {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, received {text!r}"
        )
    return value


def _units(text):
    try:
        units = tuple(int(u) for u in text.split(",") if u.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 200,200, received "
            f"{text!r}"
        ) from None
    if not units or any(u < 1 for u in units):
        raise argparse.ArgumentTypeError(
            f"expected positive integers such as 200,200, received {text!r}"
        )
    return units


def _add_train_parser(subparsers):
    p = subparsers.add_parser(
        "train",
        help="train a VAE and write a run directory",
        description=(
            "Train a VAE on a named dataset or a data file and write "
            "RUN_DIR/model.keras, history.json, metrics.json and figures/."
        ),
    )
    p.add_argument("--dataset", default="mnist",
                   help="mnist, binarized_mnist, fashion_mnist, frey_face "
                        "or a path to .npz/.npy/IDX data (default: mnist)")
    p.add_argument("--arch", default="mlp", choices=["mlp", "conv"],
                   help="network architecture (default: mlp)")
    p.add_argument("--latent-dim", type=_positive_int, default=50,
                   help="latent dimensions (default: 50)")
    p.add_argument("--hidden-units", type=_units, default=(200, 200),
                   help="MLP hidden widths, encoder order (default: "
                        "200,200: the IWAE paper's 784-200-200-50)")
    p.add_argument("--likelihood", default="bernoulli",
                   help="decoder likelihood (default: bernoulli)")
    p.add_argument("--binarize", default="auto",
                   choices=["auto", "dynamic", "static", "threshold", "none"],
                   help="binarization protocol; auto = dynamic for the "
                        "Bernoulli likelihood on grey data, none otherwise")
    p.add_argument("--epochs", type=_positive_int, default=10)
    p.add_argument("--batch-size", type=_positive_int, default=100)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--num-samples", type=_positive_int, default=1,
                   help="draws of z per example in the train step")
    p.add_argument("--beta", type=float, default=1.0,
                   help="weight of the KL term (default: 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-train-examples", type=int, default=0,
                   help="use only the first N training examples (0: all)")
    p.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="run directory to write")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished run in RUN_DIR")
    p.add_argument("--verbose", default="auto", choices=["auto", "0", "1",
                                                         "2"])
    p.set_defaults(func=_run_train)


def _resolve_binarize(args):
    if args.binarize != "auto":
        return None if args.binarize == "none" else args.binarize
    if args.likelihood == "bernoulli" and args.dataset in (
        "mnist", "fashion_mnist"
    ):
        return "dynamic"
    return None


def _run_train(args):
    from keras_vae import runs

    verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
    config = runs.TrainConfig(
        run_dir=args.out,
        dataset=args.dataset,
        arch=args.arch,
        latent_dim=args.latent_dim,
        hidden_units=args.hidden_units,
        likelihood=args.likelihood,
        binarize=_resolve_binarize(args),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        num_samples=args.num_samples,
        beta=args.beta,
        seed=args.seed,
        max_train_examples=args.max_train_examples,
        overwrite=args.overwrite,
        verbose=verbose,
    )
    _, metrics = runs.train(config)
    test = metrics["test"]
    print(f"\nData: {metrics['protocol']}")
    print(f"Model: {metrics['architecture']}")
    print(
        f"Test ELBO {test['elbo']:.2f} nats (reconstruction "
        f"{test['reconstruction_loss']:.2f}, KL {test['kl_loss']:.2f}); "
        f"{metrics['seconds_per_epoch']:.1f} s per epoch"
    )
    print(f"Run directory: {os.path.abspath(args.out)}")
    return 0


def build_parser():
    """The argparse parser of `keras-vae`."""
    parser = argparse.ArgumentParser(
        prog="keras-vae",
        description="Variational Autoencoders for Keras 3: train, evaluate, "
                    "export and serve.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    _add_train_parser(subparsers)
    return parser


def main(argv=None):
    """Entry point of `keras-vae`; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"keras-vae {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

