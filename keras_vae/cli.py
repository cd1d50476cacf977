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
    p.add_argument("--prior", default="standard",
                   choices=["standard", "mog", "vamp"],
                   help="p(z): standard normal (default), a learned mixture "
                        "of Gaussians, or the VampPrior (Tomczak & Welling "
                        "2018; its pseudo-inputs start at training examples)")
    p.add_argument("--prior-components", type=_positive_int, default=None,
                   metavar="K",
                   help="components of the mog prior (default 10) or "
                        "pseudo-inputs of the vamp prior (default 500)")
    p.add_argument("--posterior", default="diagonal",
                   choices=["diagonal", "full", "iaf"],
                   help="q(z|x): diagonal Gaussian (default), a Gaussian "
                        "with a full covariance (Cholesky factor from the "
                        "encoder), or inverse autoregressive flows over a "
                        "diagonal Gaussian (Kingma et al. 2016)")
    p.add_argument("--flows", type=_positive_int, default=None, metavar="N",
                   help="flows of the iaf posterior (default 2)")
    p.add_argument("--stochastic-layers", type=_positive_int, default=1,
                   metavar="N",
                   help="stochastic layers: 1 (default), or N >= 2 for the "
                        "IWAE paper's hierarchy q(z1|x) q(z2|z1), p(z2) "
                        "p(z1|z2) p(x|z1) (kv.build_hierarchical_vae; "
                        "--hidden-units sets the x-z1 MLP, 100-100 between "
                        "layers)")
    p.add_argument("--latent-dims", type=_units, default=(), metavar="D1,D2",
                   help="sizes of the stochastic layers from the data up, "
                        "with --stochastic-layers >= 2 (default 100,50)")
    p.add_argument("--conditional", action="store_true",
                   help="a conditional VAE on the dataset's labels: "
                        "q(z|x,y) and p(x|z,y), samples per class in "
                        "figures/samples_per_class.png, and log p(x|y) at "
                        "the true labels in the evaluation")
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
    _add_output_options(p, progress=("auto", "0", "1", "2"))
    _add_training_options(p)
    p.set_defaults(func=_run_train)


def _add_output_options(p, progress=None):
    """--verbose (TensorFlow's own log) and, where the command shows
    progress, --progress."""
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's start-up and C++ log (hidden by "
                        "default; see keras_vae._startup)")
    if progress:
        levels = ", ".join(progress[1:])
        p.add_argument("--progress", default="auto", choices=progress,
                       help="progress output: auto (default: a live bar "
                            "on a terminal, one line per epoch or per 30 s "
                            f"in a log file), or Keras' verbose {levels}")


def _save_freq(text):
    if text == "epoch":
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected 'epoch' or a positive number of batches, received "
            f"{text!r}"
        ) from None


def _add_training_options(p):
    """Objective, stability, resumption and scale (keras_vae.callbacks,
    keras_vae.distribute); the library checks the values."""
    g = p.add_argument_group(
        "objective, stability, resumption and scale",
        "RUN_DIR/backup holds a backup (keras.callbacks.BackupAndRestore): "
        "run the same command again after an interruption and training "
        "continues where it stopped, ending with the same weights. "
        "TensorBoard logs go to RUN_DIR/tensorboard.",
    )
    g.add_argument("--objective", default="elbo", choices=["elbo", "iwae"],
                   help="training objective; iwae uses --num-samples as k "
                        "(default: elbo)")
    g.add_argument("--free-bits", type=float, default=0.0,
                   help="KL floor per latent dimension in nats (Kingma et "
                        "al. 2016; default: 0, off)")
    g.add_argument("--warmup-steps", type=int, default=0,
                   help="linear KL warm-up from 0 to beta over this many "
                        "steps (default: 0, off)")
    g.add_argument("--cyclical", type=int, default=0, metavar="CYCLE_STEPS",
                   help="cyclical KL annealing with cycles of this many "
                        "steps, rising over the first half (Fu et al. "
                        "2019; default: 0, off)")
    g.add_argument("--clipnorm", type=float, default=0.0,
                   help="clip the gradient to this global norm (default: "
                        "0, off)")
    g.add_argument("--nan-guard", default="rollback",
                   choices=["rollback", "stop", "off"],
                   help="on a NaN loss, roll back to the last good weights "
                        "or stop (default: rollback)")
    g.add_argument("--save-freq", type=_save_freq, default="epoch",
                   help="backup every epoch or every N batches "
                        "(default: epoch)")
    g.add_argument("--strategy", default="default",
                   choices=["default", "mirrored", "multi_worker"],
                   help="tf.distribute strategy: mirrored = all GPUs of "
                        "this machine, multi_worker = the machines in "
                        "TF_CONFIG (default: default, one device)")
    g.add_argument("--mixed-precision", default="float32",
                   choices=["float32", "mixed_float16", "mixed_bfloat16"],
                   help="dtype policy; the KL and the likelihood stay in "
                        "float32 (default: float32)")
    g.add_argument("--jit-compile", default="auto",
                   choices=["auto", "on", "off"],
                   help="XLA compilation of the train step; auto = on with "
                        "a GPU (default: auto)")
    g.add_argument("--steps-per-execution", type=_positive_int, default=None,
                   help="train steps per call of the compiled train "
                        "function; larger cuts per-step overhead. Default: "
                        "50, or 1 with --warmup-steps/--cyclical; always cut "
                        "to divide the steps per epoch and --save-freq")
    g.add_argument("--cpu-threads", default="auto", metavar="auto|tf|I,J",
                   help="TensorFlow's CPU thread pools: I threads per op, J "
                        "ops at once; tf = TensorFlow's default; auto = 1,"
                        "<CPUs> for MLPs on CPUs with at most 4 cores "
                        "(faster there: benchmarks/RESULTS.md), else tf "
                        "(default: auto)")


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

    verbose = args.progress if args.progress == "auto" else int(
        args.progress)
    config = runs.TrainConfig(
        run_dir=args.out,
        dataset=args.dataset,
        arch=args.arch,
        latent_dim=args.latent_dim,
        hidden_units=args.hidden_units,
        likelihood=args.likelihood,
        prior=args.prior,
        prior_components=args.prior_components or 0,
        posterior=args.posterior,
        flows=args.flows or 0,
        stochastic_layers=args.stochastic_layers,
        latent_dims=tuple(args.latent_dims),
        conditional=args.conditional,
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
        objective=args.objective,
        free_bits=args.free_bits,
        warmup_steps=args.warmup_steps,
        cycle_steps=args.cyclical,
        clipnorm=args.clipnorm,
        strategy=args.strategy,
        mixed_precision=args.mixed_precision,
        jit_compile=args.jit_compile,
        steps_per_execution=args.steps_per_execution,
        save_freq=args.save_freq,
        nan_guard=args.nan_guard,
        cpu_threads=args.cpu_threads,
    )
    _, metrics = runs.train(config)
    test = metrics["test"]
    print(f"\nData: {metrics['protocol']}")
    print(f"Model: {metrics['architecture']}; prior {metrics['prior']}; "
          f"posterior {metrics['posterior']}")
    given = " of log p(x | y)" if metrics.get("conditional") else ""
    print(
        f"Test ELBO{given} {test['elbo']:.2f} nats (reconstruction "
        f"{test['reconstruction_loss']:.2f}, KL {test['kl_loss']:.2f}); "
        f"{metrics['seconds_per_epoch']:.1f} s per epoch"
        + (f" (over the {metrics['epochs_this_process']:.4g} epochs this "
           "process trained)" if metrics.get("resumed_from_step") else "")
    )
    print(f"Run directory: {os.path.abspath(args.out)}")
    return 0


def _add_export_parsers(subparsers):
    p = subparsers.add_parser(
        "export",
        help="export RUN_DIR/model.keras as a TF Serving SavedModel",
        description=(
            "Write RUN_DIR/model.keras as a SavedModel with the signatures "
            "encode, decode, reconstruct, sample, elbo and log_likelihood "
            "at BASE_DIR/<version>/ (TF Serving's layout), with warm-up "
            "requests. An existing version is never overwritten."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR",
                   help="run directory holding model.keras")
    p.add_argument("--to", required=True, metavar="BASE_DIR",
                   help="model base path, e.g. saved_models/mnist_vae")
    p.add_argument("--version", type=_positive_int, default=None,
                   help="version number (default: the next one)")
    _add_output_options(p)
    p.set_defaults(func=_run_export)

    p = subparsers.add_parser(
        "serve-check",
        help="load an export in a fresh TensorFlow-only process and run "
             "every signature",
        description=(
            "Load saved_models/NAME (its highest version) or "
            "saved_models/NAME/VERSION with tf.saved_model.load in a new "
            "process that imports TensorFlow only, call each signature on "
            "random inputs and print shapes, dtypes and timings."
        ),
    )
    p.add_argument("path", metavar="PATH",
                   help="saved_models/NAME or saved_models/NAME/VERSION")
    p.add_argument("--batch-size", type=_positive_int, default=4)
    _add_output_options(p)
    p.set_defaults(func=_run_serve_check)


def _run_export(args):
    from keras_vae import export

    try:
        path = export.export_run(args.run_dir, args.to, version=args.version)
    except TypeError as err:  # model.keras holds something else than a VAE
        print(f"keras-vae export: error: {err}", file=sys.stderr)
        return 2
    print(f"Exported {args.run_dir}/model.keras to {path}")
    print(f"Check it with: keras-vae serve-check {path}")
    return 0


def _run_serve_check(args):
    from keras_vae import export

    try:
        report = export.serve_check(args.path, batch_size=args.batch_size)
    except RuntimeError as err:
        print(f"keras-vae serve-check: error: {err}", file=sys.stderr)
        return 1
    print(export.format_serve_check(report))
    return 0 if report["ok"] else 1


def _add_evaluate_parser(subparsers):
    p = subparsers.add_parser(
        "evaluate",
        help="estimate log p(x), the ELBO gap, active units and more for a "
             "run",
        description=(
            "Reload RUN_DIR/model.keras and the test set of the run's data "
            "protocol (RUN_DIR/metrics.json), estimate log p(x) with K "
            "importance samples and write RUN_DIR/evaluation.json and "
            "evaluation.txt (or to --out). RUN_DIR may also be the name of "
            "a shipped model (keras_vae.pretrained.available()), checked "
            "against its recorded SHA-256 first."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR",
                   help="run directory written by `keras-vae train`, or a "
                        "pretrained model's name")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write evaluation.json/.txt here instead of RUN_DIR")
    p.add_argument("--num-samples", type=_positive_int, default=5000,
                   metavar="K", help="importance samples (default: 5000)")
    p.add_argument("--max-examples", type=_positive_int, default=None,
                   metavar="N", help="evaluate the first N test examples "
                                     "(default: all)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the importance samples (default: 0)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="at most this many examples per step")
    _add_output_options(p, progress=("auto", "0", "1"))
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args):
    from keras_vae import evaluation
    from keras_vae import pretrained

    verbose = args.progress if args.progress == "auto" else int(
        args.progress)
    run_dir = args.run_dir
    if not os.path.exists(run_dir) and run_dir in pretrained.available():
        run_dir = str(pretrained.locate(run_dir))
        print(f"Pretrained model {args.run_dir!r}: {run_dir} (SHA-256 "
              "checked)")
    result, paths = evaluation.evaluate_run(
        run_dir, num_samples=args.num_samples, output_dir=args.out,
        max_examples=args.max_examples, seed=args.seed,
        batch_size=args.batch_size, verbose=verbose,
    )
    print(evaluation.format_report(result), end="")
    print(f"Wrote {paths[0]} and {paths[1]}")
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
    _add_export_parsers(subparsers)
    _add_evaluate_parser(subparsers)
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

